//! Environment patterns for `ignored_environments`: `*` (any run), `?` (one character) and
//! `[…]` classes (`[abc]`, `[a-z]`, `[!x]`), matched against the whole name, ignoring ASCII case
//! (GitHub treats environment names case-insensitively).

use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EnvironmentPattern {
    source: String,
    tokens: Vec<Token>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Token {
    Literal(char),
    AnyOne,
    AnyRun,
    Class { negated: bool, ranges: Vec<(char, char)> },
}

impl EnvironmentPattern {
    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw.trim().is_empty() {
            return Err("must not be empty".to_owned());
        }
        if raw.len() > 255 {
            return Err("must be at most 255 characters".to_owned());
        }
        let mut tokens = Vec::new();
        let mut chars = raw.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '*' => {
                    if tokens.last() != Some(&Token::AnyRun) {
                        tokens.push(Token::AnyRun);
                    }
                }
                '?' => tokens.push(Token::AnyOne),
                '[' => {
                    let negated = chars.next_if(|c| *c == '!' || *c == '^').is_some();
                    let mut ranges = Vec::new();
                    let mut closed = false;
                    while let Some(c) = chars.next() {
                        if c == ']' && !ranges.is_empty() {
                            closed = true;
                            break;
                        }
                        if chars.peek() == Some(&'-') {
                            chars.next();
                            match chars.next() {
                                Some(']') => {
                                    ranges.push((c, c));
                                    ranges.push(('-', '-'));
                                    closed = true;
                                    break;
                                }
                                Some(end) if end >= c => ranges.push((c, end)),
                                Some(end) => return Err(format!("range {c}-{end} is backwards")),
                                None => break,
                            }
                        } else {
                            ranges.push((c, c));
                        }
                    }
                    if !closed {
                        return Err("has a `[` without its closing `]`".to_owned());
                    }
                    tokens.push(Token::Class { negated, ranges });
                }
                ']' => return Err("has a `]` without an opening `[`".to_owned()),
                other => tokens.push(Token::Literal(other)),
            }
        }
        Ok(Self {
            source: raw.to_owned(),
            tokens,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.source
    }

    pub fn matches(&self, environment: &str) -> bool {
        let name: Vec<char> = environment.chars().collect();
        matches_from(&self.tokens, &name)
    }
}

fn matches_from(tokens: &[Token], name: &[char]) -> bool {
    match tokens.split_first() {
        None => name.is_empty(),
        Some((Token::AnyRun, rest)) => (0..=name.len()).any(|skip| matches_from(rest, &name[skip..])),
        Some((token, rest)) => match name.split_first() {
            Some((c, name_rest)) => token_matches(token, *c) && matches_from(rest, name_rest),
            None => false,
        },
    }
}

fn token_matches(token: &Token, c: char) -> bool {
    let c = c.to_ascii_lowercase();
    match token {
        Token::Literal(l) => l.to_ascii_lowercase() == c,
        Token::AnyOne => true,
        Token::AnyRun => true,
        Token::Class { negated, ranges } => {
            let hit = ranges
                .iter()
                .any(|(a, b)| (a.to_ascii_lowercase()..=b.to_ascii_lowercase()).contains(&c) || (*a..=*b).contains(&c));
            hit != *negated
        }
    }
}

impl fmt::Display for EnvironmentPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl TryFrom<String> for EnvironmentPattern {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<EnvironmentPattern> for String {
    fn from(value: EnvironmentPattern) -> Self {
        value.source
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(pattern: &str, name: &str) -> bool {
        EnvironmentPattern::parse(pattern).unwrap().matches(name)
    }

    #[test]
    fn stars_and_question_marks_match_whole_names() {
        assert!(matches("preview-*", "preview-1234"));
        assert!(matches("preview-*", "preview-"));
        assert!(!matches("preview-*", "production"));
        assert!(!matches("preview-*", "my-preview-1"));
        assert!(matches("pr-???", "pr-123"));
        assert!(!matches("pr-???", "pr-1234"));
        assert!(matches("*-canary", "us-east-1-canary"));
        assert!(matches("*", "anything"));
        assert!(matches("production", "Production"));
    }

    #[test]
    fn classes_match_one_character() {
        assert!(matches("eu-[0-9]", "eu-3"));
        assert!(!matches("eu-[0-9]", "eu-x"));
        assert!(matches("stage-[!p]*", "stage-a1"));
        assert!(!matches("stage-[!p]*", "stage-prod"));
        assert!(matches("[A-C]x", "bx"));
    }

    #[test]
    fn malformed_patterns_are_refused() {
        for bad in ["", "  ", "preview-[", "a]", "[z-a]"] {
            assert!(EnvironmentPattern::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
