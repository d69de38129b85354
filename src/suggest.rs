//! "Did you mean" suggestions by edit distance.

/// The candidate closest to `word` (case-insensitive), when it is close enough to be a typo:
/// at most two edits, and fewer edits than a third of the word's length.
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let word = word.to_ascii_lowercase();
    let limit = 2.min(word.chars().count().div_ceil(3)).max(1);
    let mut best: Option<(&str, usize)> = None;
    let mut tie = false;
    for candidate in candidates {
        let distance = distance(&word, &candidate.to_ascii_lowercase());
        if distance > limit {
            continue;
        }
        match best {
            Some((_, known)) if distance > known => {}
            Some((known_candidate, known)) if distance == known => tie |= known_candidate != candidate,
            _ => {
                best = Some((candidate, distance));
                tie = false;
            }
        }
    }
    best.filter(|_| !tie).map(|(candidate, _)| candidate)
}

/// Optimal string alignment distance: insertions, deletions, substitutions and swaps of
/// neighbours each cost one edit, so `privilaged` is one edit from `privileged`.
pub fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut rows = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in rows.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in rows[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (rows[i - 1][j] + 1).min(rows[i][j - 1] + 1).min(rows[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(rows[i - 2][j - 2] + 1);
            }
            rows[i][j] = best;
        }
    }
    rows[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typos_find_their_key() {
        let keys = ["privileged", "image", "volumes", "network_mode"];
        assert_eq!(closest("privilaged", keys), Some("privileged"));
        assert_eq!(closest("imgae", keys), Some("image"));
        assert_eq!(closest("volume", keys), Some("volumes"));
        assert_eq!(closest("completely_else", keys), None);
    }

    #[test]
    fn ties_give_no_suggestion() {
        assert_eq!(closest("ab", ["ac", "ad"]), None);
    }
}
