{{- define "urr-operator.name" -}}urr-operator{{- end -}}

{{- define "urr-operator.fullname" -}}
{{- if contains "urr-operator" .Release.Name -}}{{ .Release.Name | trunc 63 | trimSuffix "-" }}{{- else -}}{{ printf "%s-urr-operator" .Release.Name | trunc 63 | trimSuffix "-" }}{{- end -}}
{{- end -}}

{{- define "urr-operator.labels" -}}
app.kubernetes.io/name: urr-operator
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: urr
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "urr-operator.selector" -}}
app.kubernetes.io/name: urr-operator
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "urr-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}{{ default (include "urr-operator.fullname" .) .Values.serviceAccount.name }}{{- else -}}{{ required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}{{- end -}}
{{- end -}}

{{/* The rules of one document of files/operator-rbac.yaml (a copy of operator/rbac/operator-rbac.yaml, checked for drift in CI), by kind. */}}
{{- define "urr-operator.rulesOf" -}}
{{- $kind := .kind -}}
{{- range (.root.Files.Get "files/operator-rbac.yaml" | splitList "\n---") -}}
{{- $doc := fromYaml . -}}
{{- if eq (get $doc "kind") $kind -}}
{{ toYaml (get $doc "rules") }}
{{- end -}}
{{- end -}}
{{- end -}}
