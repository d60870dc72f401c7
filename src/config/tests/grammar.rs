//! Tests of the §9.1 grammar: layout, comments, quoting, error lines and
//! limits, and file reading.

use super::*;

#[test]
fn basic_structure() {
    let c = parse("a { k = v ; }\n\nb{x=1;y='2';z=\"3\";}").unwrap();
    assert_eq!(c.path, Path::new(P));
    assert_eq!(c.blocks.len(), 2);
    assert_eq!(c.blocks[0].name, "a");
    assert_eq!(c.blocks[0].line, 1);
    assert_eq!(
        c.blocks[0].entries,
        vec![Entry {
            key: "k".into(),
            value: "v".into(),
            line: 1
        }]
    );
    assert_eq!(c.blocks[1].line, 3);
    assert_eq!(get(&c.blocks[1], "x"), Some("1"));
    assert_eq!(get(&c.blocks[1], "y"), Some("2"));
    assert_eq!(get(&c.blocks[1], "z"), Some("3"));
    assert_eq!(get(&c.blocks[1], "w"), None);
}

#[test]
fn empty_block_and_free_layout() {
    let c = parse("\n\n  empty\n{\n}\nb\n{\nk\n=\nv\n;\n}").unwrap();
    assert_eq!(c.blocks[0].name, "empty");
    assert_eq!(c.blocks[0].line, 3);
    assert!(c.blocks[0].entries.is_empty());
    assert_eq!(c.blocks[1].entries[0].line, 8);
    assert_eq!(get(&c.blocks[1], "k"), Some("v"));
}

#[test]
fn comments_everywhere() {
    let text = "# head\n\
                blk # after name\n\
                { # after brace\n\
                # full line\n\
                key # after key\n\
                = # after equal\n\
                value# right after a bare value\n\
                ; # after semicolon\n\
                k2 = \"q\" # after quoted value\n\
                ;\n\
                } # after close\n\
                # trailing comment without newline";
    let c = parse(text).unwrap();
    assert_eq!(get(&c.blocks[0], "key"), Some("value"));
    assert_eq!(get(&c.blocks[0], "k2"), Some("q"));
}

#[test]
fn hash_inside_quotes_is_a_comment() {
    let (line, msg) = syntax_err("b {\n k = \"a#b\" ;\n}\n");
    assert_eq!(line, 2);
    assert!(msg.contains("missing closing quote"), "{msg}");
    assert!(msg.contains("'k'"), "{msg}");
    let (line, msg) = syntax_err("b {\n k = 'a#b' ;\n}\n");
    assert_eq!(line, 2);
    assert!(msg.contains("missing closing quote"), "{msg}");
}

#[test]
fn double_quote_escapes() {
    let c = parse(r#"b { k = "a\"b\\c\;d\x" ; s = "sp ace;" ; }"#).unwrap();
    assert_eq!(get(&c.blocks[0], "k"), Some("a\"b\\c;dx"));
    assert_eq!(get(&c.blocks[0], "s"), Some("sp ace;"));
}

#[test]
fn single_quotes_have_no_escapes() {
    let c = parse(r#"b { k = 'a\b"c' ; }"#).unwrap();
    assert_eq!(get(&c.blocks[0], "k"), Some("a\\b\"c"));
}

#[test]
fn continuation_line() {
    let c = parse("b {\n k = \"abc\\\ndef\" ;\n n = 1 ;\n}").unwrap();
    assert_eq!(get(&c.blocks[0], "k"), Some("abcdef"));
    // Line counting continues across the continuation.
    assert_eq!(c.blocks[0].entries[1].line, 4);
}

#[test]
fn escaped_hash_c_compat() {
    // After a backslash, "#..." is a comment and its newline a continuation.
    let c = parse("b { k = \"ab\\# note\ncd\" ; }").unwrap();
    assert_eq!(get(&c.blocks[0], "k"), Some("abcd"));
    let (_, msg) = syntax_err("b { k = \"ab\\#\ncd\" ; }");
    assert!(msg.contains("missing closing quote"), "{msg}");
}

#[test]
fn newline_in_quotes() {
    let (line, msg) = syntax_err("b {\n k = \"abc\ndef\" ;\n}");
    assert_eq!(line, 2);
    assert!(msg.contains("missing closing quote in value of key 'k'"));
    let (line, _) = syntax_err("b {\n\n k = 'abc\ndef' ;\n}");
    assert_eq!(line, 3);
    let (_, msg) = syntax_err("b { k = \"abc");
    assert!(msg.contains("missing closing quote"));
    let (_, msg) = syntax_err("b { k = \"abc\\");
    assert!(msg.contains("missing closing quote"));
}

#[test]
fn missing_semicolon() {
    let text = "common {\n PrimaryHost = a ;\n\n\n\n\n\n\n\n\n\n PrimaryPort = 12345\n}\n";
    let err = parse(text).unwrap_err();
    let s = err.to_string();
    assert!(
        s.starts_with("/etc/auks/auks.conf:13: expected ';' after value of key 'PrimaryPort'"),
        "{s}"
    );
    let (line, msg) = syntax_err("b { k = \"v\" }");
    assert_eq!(line, 1);
    assert_eq!(msg, "expected ';' after value of key 'k', found '}'");
    let (_, msg) = syntax_err("b { k = a b ; }");
    assert!(msg.contains("expected ';'"), "{msg}");
}

#[test]
fn missing_close_brace() {
    let (line, msg) = syntax_err("blk {\n k = v ;\n");
    assert_eq!(line, 3);
    assert!(msg.contains("'}'") && msg.contains("'blk'") && msg.contains("line 1"));
    let (_, msg) = syntax_err("a { k = v ; b { }");
    assert!(msg.contains("expected '='"), "{msg}");
}

#[test]
fn semicolon_after_block_is_an_error() {
    let (_, msg) = syntax_err("a { } ;");
    assert!(msg.contains("expected block name"), "{msg}");
}

#[test]
fn bad_identifiers() {
    let (_, msg) = syntax_err("1abc { }");
    assert_eq!(msg, "expected block name, found '1'");
    let (_, msg) = syntax_err("b { 9k = v ; }");
    assert!(msg.contains("expected key name or '}'"), "{msg}");
    let (_, msg) = syntax_err("b { k@ = v ; }");
    assert!(msg.contains("expected '=' after key 'k'"), "{msg}");
    let (_, msg) = syntax_err("\"b\" { }");
    assert!(msg.contains("expected block name"), "{msg}");
    let (_, msg) = syntax_err("b = { }");
    assert!(msg.contains("expected '{' after block name 'b'"), "{msg}");
    let c = parse("_a.b:c-d { .k-1:x = v ; }").unwrap();
    assert_eq!(c.blocks[0].name, "_a.b:c-d");
    assert_eq!(get(&c.blocks[0], ".K-1:X"), Some("v"));
}

#[test]
fn missing_or_empty_value() {
    let (_, msg) = syntax_err("b { k = ; }");
    assert_eq!(msg, "expected value for key 'k', found ';'");
    let c = parse("b { k = \"\" ; l = '' ; }").unwrap();
    assert_eq!(get(&c.blocks[0], "k"), Some(""));
    assert_eq!(get(&c.blocks[0], "l"), Some(""));
}

#[test]
fn bare_values_keep_special_characters() {
    let c = parse("rule { principal = ^[[:alnum:]]*@A.B$ ; x = a{b}=c\\d ; }").unwrap();
    assert_eq!(get(&c.blocks[0], "principal"), Some("^[[:alnum:]]*@A.B$"));
    assert_eq!(get(&c.blocks[0], "x"), Some("a{b}=c\\d"));
}

#[test]
fn unexpected_characters() {
    let (_, msg) = syntax_err("b { k = v ; }\n\u{b}");
    assert!(msg.contains("expected block name"), "{msg}");
    let (_, msg) = syntax_err("b { k = \"a\0b\" ; }");
    assert!(msg.contains("NUL"), "{msg}");
    let (_, msg) = syntax_err("b { k = a\0b ; }");
    assert!(msg.contains("expected ';'"), "{msg}");
}

#[test]
fn length_limits() {
    let ok = "v".repeat(MAX_TOKEN_LEN);
    assert!(parse(&format!("b {{ k = \"{ok}\" ; }}")).is_ok());
    let long = "v".repeat(MAX_TOKEN_LEN + 1);
    let (_, msg) = syntax_err(&format!("b {{ k = {long} ; }}"));
    assert!(msg.contains("too long"), "{msg}");
    let (_, msg) = syntax_err(&format!("b {{ {long} = 1 ; }}"));
    assert!(msg.contains("key name is too long"), "{msg}");
    let (_, msg) = syntax_err(&format!("{long} {{ }}"));
    assert!(msg.contains("block name is too long"), "{msg}");
}

#[test]
fn no_blocks() {
    for text in ["", "   \n\n# only comments\n", "#x"] {
        let err = parse(text).unwrap_err();
        assert!(matches!(err, ConfigError::NoBlocks { .. }));
        assert_eq!(
            err.to_string(),
            "/etc/auks/auks.conf: no configuration blocks found"
        );
    }
}

#[test]
fn case_insensitive_keys_first_wins() {
    let c = parse("b { PrimaryHost = a ; primaryhost = b ; PRIMARYHOST = c ; }").unwrap();
    assert_eq!(get(&c.blocks[0], "primaryHOST"), Some("a"));
    assert_eq!(c.blocks[0].entry("PrimaryHost").map(|e| e.line), Some(1));
    let cfg = client("common { primaryhost = x ; PrimaryHost = y ; } api { }").unwrap();
    assert_eq!(cfg.common.primary.host, "x");
    assert!(cfg
        .warnings
        .iter()
        .any(|w| w.contains("duplicate key 'PrimaryHost'")));
}

#[test]
fn never_panics_on_odd_input() {
    let samples = [
        "\u{feff}a { }",
        "a { k = \"é\\é\" ; }",
        "a { k = v ;",
        "a {",
        "a",
        "{",
        "}",
        "a { k",
        "a { k =",
        "a { k = \\",
        "a { k = \"\\",
        "a { k = \"\\#x",
        "é { }",
        "a { k = 'x",
    ];
    for s in samples {
        let _ = parse(s);
        let _ = client(s);
        let _ = daemon(s);
    }
    let c = parse("a { k = \"é\\é\" ; }").unwrap();
    assert_eq!(get(&c.blocks[0], "k"), Some("éé"));
}

#[test]
fn parse_file_errors() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.conf");
    let err = parse_file(&missing).unwrap_err();
    assert!(matches!(err, ConfigError::Io { .. }));
    assert!(err.to_string().contains("nope.conf: cannot read file"));

    let bad = dir.path().join("bad.conf");
    std::fs::write(&bad, b"a {\n k = \"\xff\" ;\n}\n").unwrap();
    match parse_file(&bad) {
        Err(ConfigError::Syntax { line, message, .. }) => {
            assert_eq!(line, 2);
            assert!(message.contains("UTF-8"));
        }
        other => panic!("{other:?}"),
    }

    let good = dir.path().join("auks.conf");
    std::fs::write(&good, DEPLOYMENT).unwrap();
    let c = parse_file(&good).unwrap();
    assert_eq!(c.path, good);
    assert_eq!(c.blocks.len(), 4);
}
