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

{{/* The rules of .kind, split on Secrets: .secrets "only" keeps the rules on
     core Secrets, "without" drops them, "all" keeps everything. */}}
{{- define "urr-operator.rulesSplit" -}}
{{- $rules := list -}}
{{- range (fromYamlArray (include "urr-operator.rulesOf" (dict "root" .root "kind" .kind))) -}}
{{- $isSecret := and (has "" .apiGroups) (has "secrets" .resources) -}}
{{- if or (eq $.secrets "all") (and (eq $.secrets "only") $isSecret) (and (eq $.secrets "without") (not $isSecret)) -}}
{{- $rules = append $rules . -}}
{{- end -}}
{{- end -}}
{{ toYaml $rules }}
{{- end -}}

{{/* The peers allowed to a service's internal port (9090: /internal/*,
     /metrics, the probes; operator/src/children/mod.rs INTERNAL_PORT): the
     operator's pods and, when networkPolicy.prometheus.namespace is set,
     Prometheus. The public port (8080) is never opened to them. */}}
{{- define "urr-operator.internalPeers" -}}
- namespaceSelector:
    matchLabels:
      kubernetes.io/metadata.name: {{ .Release.Namespace }}
  podSelector:
    matchLabels:
      app.kubernetes.io/name: urr-operator
{{- with .Values.networkPolicy.prometheus }}
{{- if .namespace }}
- namespaceSelector:
    matchLabels:
      kubernetes.io/metadata.name: {{ .namespace }}
  {{- with .podLabels }}
  podSelector:
    matchLabels:
      {{- toYaml . | nindent 6 }}
  {{- end }}
{{- end }}
{{- end }}
{{- end -}}
