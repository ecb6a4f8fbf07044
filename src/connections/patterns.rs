//! Environment patterns for `ignored_environments`: `*` (any run), `?` (one character) and
//! `[…]` classes (`[abc]`, `[a-z]`, `[!x]`), matched against the whole name, ignoring ASCII case
//! (GitHub treats environment names case-insensitively).
//!
//! Matching takes time linear in (pattern length × name length) at worst: the classic iterative
//! wildcard algorithm keeps only the last `*` as its backtrack point, because a later `*` can
//! absorb anything an earlier one could. A recursive matcher that tries every split at every `*`
//! took over a minute for `*-*-*-*-*-canary` against a 255-character name. This own matcher is
//! kept (not `globset`) because it has exactly the documented syntax and case rule, and costs no
//! dependency.

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
        match_tokens(&self.tokens, &name).0
    }
}

/// Whether `tokens` match the whole of `name`, and the steps it took (at most
/// `(tokens + 1) × (name + 1)`): each step either consumes a token or moves the run of the last
/// `*` one character further, and that run only grows.
fn match_tokens(tokens: &[Token], name: &[char]) -> (bool, u64) {
    let mut steps = 0_u64;
    let (mut t, mut n) = (0, 0);
    // After the last `*` seen: the token following it, and where its run currently ends.
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        steps += 1;
        match tokens.get(t) {
            Some(Token::AnyRun) => {
                t += 1;
                star = Some((t, n));
                continue;
            }
            Some(token) if name.get(n).is_some_and(|c| token_matches(token, *c)) => {
                t += 1;
                n += 1;
                continue;
            }
            _ => {}
        }
        match star {
            Some((after, run_end)) => {
                star = Some((after, run_end + 1));
                t = after;
                n = run_end + 1;
            }
            None => return (false, steps),
        }
    }
    while tokens.get(t) == Some(&Token::AnyRun) {
        t += 1;
    }
    (t == tokens.len(), steps)
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

    /// The old recursive matcher: obviously right, exponential at worst.
    fn reference(tokens: &[Token], name: &[char]) -> bool {
        match tokens.split_first() {
            None => name.is_empty(),
            Some((Token::AnyRun, rest)) => (0..=name.len()).any(|skip| reference(rest, &name[skip..])),
            Some((token, rest)) => match name.split_first() {
                Some((c, name_rest)) => token_matches(token, *c) && reference(rest, name_rest),
                None => false,
            },
        }
    }

    #[test]
    fn many_stars_against_a_long_name_take_steps_linear_in_pattern_times_name() {
        let long_dashes = format!("{}x", "-".repeat(254));
        let long_as = "a".repeat(255);
        let cases = [
            ("*-*-*-*-*-canary", long_dashes.as_str()),
            ("*-*-*-*-*-*-*-*-canary", long_dashes.as_str()),
            (
                "*-*-*-*-*-*-*-*-*-*-*-*-*-*-*-*-*-*-*-*-*-*-*-*-*-*-*-*-*-*-x",
                long_dashes.as_str(),
            ),
            (
                "*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b",
                long_as.as_str(),
            ),
            (
                "*?*?*?*?*?*?*?*?*?*?*?*?*?*?*?*?*?*?*?*?*?*?*?*?*?*?*?*?*[!a]",
                long_as.as_str(),
            ),
        ];
        let started = std::time::Instant::now();
        for (raw, name) in cases {
            let pattern = EnvironmentPattern::parse(raw).unwrap();
            let chars: Vec<char> = name.chars().collect();
            let (_, steps) = match_tokens(&pattern.tokens, &chars);
            let bound = (pattern.tokens.len() as u64 + 1) * (chars.len() as u64 + 1);
            assert!(steps <= bound, "{raw}: {steps} steps, bound {bound}");
        }
        assert!(!matches("*-*-*-*-*-*-*-*-canary", &long_dashes));
        assert!(matches("*-*-*-*-*-*-*-*-x", &long_dashes));
        assert!(
            started.elapsed() < std::time::Duration::from_millis(100),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn the_matcher_agrees_with_the_reference_on_random_small_inputs() {
        // xorshift: reproducible without a dependency.
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move |below: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % below
        };
        let pattern_parts = ["*", "?", "a", "B", "-", "[ab]", "[!a]", "[a-c]"];
        let name_chars = ['a', 'b', 'A', 'c', '-', 'z'];
        for _ in 0..20_000 {
            let raw: String = (0..1 + next(6)).map(|_| pattern_parts[next(8) as usize]).collect();
            let name: String = (0..next(8)).map(|_| name_chars[next(6) as usize]).collect();
            let pattern = EnvironmentPattern::parse(&raw).unwrap();
            let chars: Vec<char> = name.chars().collect();
            assert_eq!(
                pattern.matches(&name),
                reference(&pattern.tokens, &chars),
                "{raw:?} against {name:?}"
            );
        }
    }

    #[test]
    fn malformed_patterns_are_refused() {
        for bad in ["", "  ", "preview-[", "a]", "[z-a]"] {
            assert!(EnvironmentPattern::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
