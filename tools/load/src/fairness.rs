//! Fairness: does admission order follow join order? Kendall's tau between
//! the two orders (1 = exactly first come, first served; 0 = no relation),
//! counted in O(n log n) by merge-sort inversions.

/// Kendall's tau-a of `order` against its sorted self: `order[i]` is the
/// admission rank of the buyer who joined `i`-th.
pub fn kendall_tau(order: &[u64]) -> Option<f64> {
    let n = order.len();
    if n < 2 {
        return None;
    }
    let mut values = order.to_vec();
    let inversions = count_inversions(&mut values);
    let pairs = (n as f64) * (n as f64 - 1.0) / 2.0;
    Some(1.0 - 2.0 * inversions as f64 / pairs)
}

fn count_inversions(values: &mut [u64]) -> u64 {
    let n = values.len();
    if n < 2 {
        return 0;
    }
    let mid = n / 2;
    let mut inversions =
        count_inversions(&mut values[..mid]) + count_inversions(&mut values[mid..]);
    let mut merged = Vec::with_capacity(n);
    let (mut i, mut j) = (0, mid);
    while i < mid && j < n {
        if values[i] <= values[j] {
            merged.push(values[i]);
            i += 1;
        } else {
            merged.push(values[j]);
            inversions += (mid - i) as u64;
            j += 1;
        }
    }
    merged.extend_from_slice(&values[i..mid]);
    merged.extend_from_slice(&values[j..]);
    values.copy_from_slice(&merged);
    inversions
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tau_of_known_orders() {
        assert_eq!(kendall_tau(&[0, 1, 2, 3]), Some(1.0));
        assert_eq!(kendall_tau(&[3, 2, 1, 0]), Some(-1.0));
        // One swapped pair among six: 1 - 2/6.
        let tau = kendall_tau(&[1, 0, 2, 3]).expect("tau");
        assert!((tau - (1.0 - 2.0 / 6.0)).abs() < 1e-9);
        assert_eq!(kendall_tau(&[7]), None);
    }

    #[test]
    fn inversions_match_the_quadratic_count() {
        let values: Vec<u64> = vec![5, 1, 4, 2, 8, 0, 3, 9, 7, 6];
        let mut brute = 0;
        for i in 0..values.len() {
            for j in i + 1..values.len() {
                if values[i] > values[j] {
                    brute += 1;
                }
            }
        }
        assert_eq!(count_inversions(&mut values.clone()), brute);
    }
}
