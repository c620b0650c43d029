//! The CLI is case sensitive and lowercase only, as the spec says; a
//! capitalised verb or kind gets an error naming the right spelling rather
//! than clap's generic one.

const WORDS: &[&str] = &[
    "create",
    "show",
    "delete",
    "scale",
    "scaledown",
    "test",
    "df",
    "version",
    "status",
    "cluster",
    "help",
];

pub fn check(argv: &[String]) -> Result<(), String> {
    // Only the command words (the first two positionals) are checked:
    // cluster names have their own rule, enforced by the apiserver.
    let positionals = argv.iter().skip(1).filter(|a| !a.starts_with('-')).take(2);
    for word in positionals {
        let lower = word.to_lowercase();
        if &lower != word && WORDS.contains(&lower.as_str()) {
            return Err(format!("commands are lowercase: use '{lower}', not '{word}'"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check;

    fn args(s: &str) -> Vec<String> {
        s.split(' ').map(String::from).collect()
    }

    #[test]
    fn capitalised_verbs_and_kinds_name_the_right_spelling() {
        let err = check(&args("pgo Create cluster x")).unwrap_err();
        assert!(err.contains("'create'") && err.contains("'Create'"), "{err}");
        assert!(
            check(&args("pgo show CLUSTER all"))
                .unwrap_err()
                .contains("'cluster'")
        );
        assert!(check(&args("pgo show cluster all")).is_ok());
        assert!(
            check(&args("pgo create cluster Mixed")).is_ok(),
            "names are checked by the server"
        );
    }
}
