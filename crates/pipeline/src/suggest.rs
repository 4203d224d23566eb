//! "Did you mean ...?" for misspelt stage kinds, keys, outputs and params.

/// The candidate closest to `word`, when it is close enough to be a likely typo.
pub fn closest<'a, I>(word: &str, candidates: I) -> Option<&'a str>
where
    I: IntoIterator<Item = &'a str>,
{
    candidates
        .into_iter()
        .map(|candidate| (strsim::damerau_levenshtein(word, candidate), candidate))
        .filter(|(distance, candidate)| {
            let longest = word.chars().count().max(candidate.chars().count());
            *distance <= (longest / 3).max(1) && *distance < longest
        })
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

/// A help line: "did you mean `x`?" or the list of valid names.
pub fn help<'a, I>(word: &str, candidates: I) -> String
where
    I: IntoIterator<Item = &'a str> + Clone,
{
    match closest(word, candidates.clone()) {
        Some(best) => format!("did you mean `{best}`?"),
        None => {
            let all: Vec<String> = candidates.into_iter().map(|c| format!("`{c}`")).collect();
            if all.is_empty() {
                "there are none".to_owned()
            } else {
                format!("expected one of {}", all.join(", "))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_typos_but_not_unrelated_words() {
        let kinds = ["dataset", "train", "quantize", "export"];
        assert_eq!(closest("quantise", kinds), Some("quantize"));
        assert_eq!(closest("trian", kinds), Some("train"));
        assert_eq!(closest("banana", kinds), None);
        assert_eq!(closest("c", ["a", "b"]), None);
        assert_eq!(
            help("parms", ["kind", "params", "inputs"]),
            "did you mean `params`?"
        );
        assert_eq!(
            help("zzz", ["kind", "params"]),
            "expected one of `kind`, `params`"
        );
    }
}
