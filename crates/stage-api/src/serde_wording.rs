//! serde's deserialization messages in the project's words: "invalid type:
//! string \"x\", expected u32" names Rust types a pipeline author never
//! wrote; this says "is the text \"x\", but must be a whole number (0 or
//! more)". Messages serde did not produce pass through unchanged.

/// Rewords one serde message (without the ` at line L column C` suffix
/// serde_json appends, which is kept as is).
pub fn reword(message: &str) -> String {
    let (body, position) = match message.rfind(" at line ") {
        Some(at) if message[at..].contains(" column ") => message.split_at(at),
        _ => (message, ""),
    };
    let reworded = if let Some(rest) = body.strip_prefix("invalid type: ") {
        found_expected(rest)
    } else if let Some(rest) = body.strip_prefix("invalid value: ") {
        found_expected(rest)
    } else if let Some(rest) = body.strip_prefix("unknown field ") {
        match rest.split_once(", expected ") {
            Some((field, expected)) => format!(
                "unknown key {field}; the valid keys are {}",
                expected.trim_start_matches("one of ")
            ),
            None => format!(
                "unknown key {}; there are no keys here",
                rest.trim_end_matches(", there are no fields")
            ),
        }
    } else if let Some(rest) = body.strip_prefix("unknown variant ") {
        match rest.split_once(", expected ") {
            Some((variant, expected)) => format!(
                "{variant} is not a choice; the choices are {}",
                expected.trim_start_matches("one of ")
            ),
            None => format!("{rest} is not a choice"),
        }
    } else if let Some(field) = body.strip_prefix("missing field ") {
        format!("{field} is required but missing")
    } else if let Some(field) = body.strip_prefix("duplicate field ") {
        format!("{field} is given twice; keep one")
    } else if let Some(what) = body.strip_prefix("EOF while parsing ") {
        format!("the JSON ends inside {what} (the file is cut short)")
    } else if body == "expected value" {
        "this is not JSON (no value where one was expected)".to_owned()
    } else if body == "trailing characters" {
        "there is more text after the JSON document".to_owned()
    } else if body == "key must be a string" {
        "an object key is not a quoted string".to_owned()
    } else {
        return message.to_owned();
    };
    format!("{reworded}{position}")
}

/// `A, expected E` -> `is A', but must be E'`.
fn found_expected(text: &str) -> String {
    match text.split_once(", expected ") {
        Some((found, expected)) => {
            format!(
                "is {}, but must be {}",
                found_value(found),
                expected_type(expected)
            )
        }
        None => format!("is {}", found_value(text)),
    }
}

/// serde's `Unexpected` in words: `string "x"` -> `the text "x"`.
fn found_value(found: &str) -> String {
    let unquote = |s: &str| s.trim_matches('`').to_owned();
    if let Some(text) = found.strip_prefix("string ") {
        format!("the text {text}")
    } else if let Some(number) = found.strip_prefix("integer ") {
        format!("the whole number {}", unquote(number))
    } else if let Some(number) = found.strip_prefix("floating point ") {
        format!("the number {}", unquote(number))
    } else if let Some(value) = found.strip_prefix("boolean ") {
        unquote(value)
    } else if let Some(value) = found.strip_prefix("char ") {
        format!("the text {}", unquote(value))
    } else {
        match found {
            "sequence" => "a list".to_owned(),
            "map" => "a mapping".to_owned(),
            "unit value" | "null" | "unit" | "Option value" => "empty (null)".to_owned(),
            other => other.to_owned(),
        }
    }
}

/// What a Rust type expects, in words: `u32` -> `a whole number (0 or more)`.
fn expected_type(expected: &str) -> String {
    let expected = expected.trim();
    match expected {
        "u8" | "u16" | "u32" | "u64" | "u128" | "usize" => "a whole number (0 or more)".to_owned(),
        "i8" | "i16" | "i32" | "i64" | "i128" | "isize" => "a whole number".to_owned(),
        "f32" | "f64" => "a number".to_owned(),
        "a boolean" | "bool" => "true or false".to_owned(),
        "a string" | "a borrowed string" | "string" => "text".to_owned(),
        "a sequence" | "sequence" => "a list".to_owned(),
        "a map" | "map" => "a mapping".to_owned(),
        "a character" | "char" => "a single character".to_owned(),
        other => {
            if other.starts_with("struct ") {
                "a mapping of keys".to_owned()
            } else if other.starts_with("enum ") || other.starts_with("variant identifier") {
                "one of the choices".to_owned()
            } else if let Some(count) = other.strip_prefix("a tuple of size ") {
                format!("a list of {count} values")
            } else {
                other.to_owned()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_mismatches_name_values_not_rust_types() {
        assert_eq!(
            reword(r#"invalid type: string "ten", expected u32"#),
            r#"is the text "ten", but must be a whole number (0 or more)"#
        );
        assert_eq!(
            reword("invalid type: floating point `0.5`, expected a boolean"),
            "is the number 0.5, but must be true or false"
        );
        assert_eq!(
            reword("invalid type: sequence, expected struct SplitParams"),
            "is a list, but must be a mapping of keys"
        );
        assert_eq!(
            reword("invalid value: integer `-3`, expected usize"),
            "is the whole number -3, but must be a whole number (0 or more)"
        );
        assert_eq!(
            reword("invalid type: map, expected f64 at line 3 column 9"),
            "is a mapping, but must be a number at line 3 column 9"
        );
    }

    #[test]
    fn unknown_and_missing_keys_and_choices() {
        assert_eq!(
            reword("unknown field `stpes`, expected one of `steps`, `seed`"),
            "unknown key `stpes`; the valid keys are `steps`, `seed`"
        );
        assert_eq!(
            reword("unknown variant `int4`, expected one of `float16`, `dynamic`"),
            "`int4` is not a choice; the choices are `float16`, `dynamic`"
        );
        assert_eq!(
            reword("missing field `source`"),
            "`source` is required but missing"
        );
        assert_eq!(reword("something else entirely"), "something else entirely");
    }

    #[test]
    fn json_syntax_errors_say_what_is_wrong_with_the_file() {
        let cut = serde_json::from_str::<serde_json::Value>("{\"a\": [1,").unwrap_err();
        assert_eq!(
            reword(&cut.to_string()),
            "the JSON ends inside a value (the file is cut short) at line 1 column 9"
        );
        let not_json = serde_json::from_str::<serde_json::Value>("{ not json").unwrap_err();
        assert_eq!(
            reword(&not_json.to_string()),
            "an object key is not a quoted string at line 1 column 3"
        );
        let more = serde_json::from_str::<serde_json::Value>("{} {}").unwrap_err();
        assert_eq!(
            reword(&more.to_string()),
            "there is more text after the JSON document at line 1 column 4"
        );
    }

    #[test]
    fn real_serde_errors_are_reworded() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Params {
            steps: u32,
        }
        let err = serde_json::from_str::<Params>(r#"{"steps": "x"}"#).unwrap_err();
        assert_eq!(
            reword(&err.to_string()),
            r#"is the text "x", but must be a whole number (0 or more) at line 1 column 13"#
        );
    }
}
