//! "Did you mean ...?" for command lines: the candidate closest to a
//! mistyped word, by optimal-string-alignment distance (insertions,
//! deletions, substitutions and swaps of two neighbouring characters).

/// The candidate closest to `word`, if it is close enough to be what was
/// meant: at most 2 edits, and fewer edits than the word has characters.
pub fn closest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let word = word.to_ascii_lowercase();
    let limit = 2.min(word.chars().count().saturating_sub(1));
    candidates
        .iter()
        .map(|c| (distance(&word, c), *c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Optimal string alignment distance between `a` and `b`.
pub fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let w = b.len() + 1;
    let mut d = vec![0usize; (a.len() + 1) * w];
    for i in 0..=a.len() {
        d[i * w] = i;
    }
    for (j, cell) in d.iter_mut().enumerate().take(w) {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[(i - 1) * w + j] + 1)
                .min(d[i * w + j - 1] + 1)
                .min(d[(i - 1) * w + j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[(i - 2) * w + j - 2] + 1);
            }
            d[i * w + j] = v;
        }
    }
    d[a.len() * w + b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPTS: &[&str] = &[
        "get", "add", "ping", "remove", "receive", "ccache", "config",
    ];

    #[test]
    fn typos_find_their_option() {
        assert_eq!(closest("gte", OPTS), Some("get"));
        assert_eq!(closest("gett", OPTS), Some("get"));
        assert_eq!(closest("recieve", OPTS), Some("receive"));
        assert_eq!(closest("remvoe", OPTS), Some("remove"));
        assert_eq!(closest("cache", OPTS), Some("ccache"));
        assert_eq!(closest("conifg", OPTS), Some("config"));
        assert_eq!(closest("PING", OPTS), Some("ping"));
    }

    #[test]
    fn unrelated_words_find_nothing() {
        assert_eq!(closest("bogus", OPTS), None);
        assert_eq!(closest("x", OPTS), None);
        assert_eq!(closest("", OPTS), None);
        assert_eq!(distance("kitten", "sitting"), 3);
        assert_eq!(distance("ab", "ba"), 1);
    }
}
