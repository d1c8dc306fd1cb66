//! Values named on the command line (nemesis kinds, scenarios, injected bugs): one table of
//! values per enum, and one way to read a name back with an error that lists every choice.

/// The value of `all` whose `name` is `text`; otherwise an error naming `what` and listing the
/// choices after `also` (e.g. `"all, none, or "`).
pub fn parse_name<T: Copy>(
    all: &[T],
    name: impl Fn(T) -> &'static str,
    text: &str,
    what: &str,
    also: &str,
) -> Result<T, String> {
    all.iter()
        .copied()
        .find(|x| name(*x) == text)
        .ok_or_else(|| {
            let names: Vec<&str> = all.iter().map(|x| name(*x)).collect();
            format!(
                "unknown {what} `{text}`: expected {also}{}",
                names.join(", ")
            )
        })
}

#[cfg(test)]
mod tests {
    use super::parse_name;

    #[test]
    fn a_name_reads_back_and_an_unknown_one_lists_every_choice() {
        let name = |x: u8| ["zero", "one"][x as usize];
        assert_eq!(parse_name(&[0, 1], name, "one", "digit", ""), Ok(1));
        assert_eq!(
            parse_name(&[0, 1], name, "two", "digit", "none, or "),
            Err("unknown digit `two`: expected none, or zero, one".to_string())
        );
    }
}
