//! IAM wildcard matching: `*` matches any run of characters (none included), `?` exactly one.
//! Action names compare without regard to case, ARNs and condition strings with it.

/// Whether `text` matches `pattern`. ASCII (every action name and ARN in practice) is matched
/// byte by byte without allocating; anything else by characters.
pub(crate) fn matches(pattern: &str, text: &str, ignore_case: bool) -> bool {
    if pattern.is_ascii() && text.is_ascii() {
        let same = |a: u8, b: u8| if ignore_case { a.eq_ignore_ascii_case(&b) } else { a == b };
        return glob(pattern.as_bytes(), text.as_bytes(), b'*', b'?', same);
    }
    let pattern: Vec<char> = pattern.chars().collect();
    let text: Vec<char> = text.chars().collect();
    let same = |a: char, b: char| if ignore_case { a.to_lowercase().eq(b.to_lowercase()) } else { a == b };
    glob(&pattern, &text, '*', '?', same)
}

/// The classic two-pointer match that backtracks only to the last `*`: quadratic at worst, so a
/// hostile pattern like `*a*a*a*…` cannot blow up.
fn glob<T: Copy + PartialEq>(pattern: &[T], text: &[T], star: T, any: T, same: impl Fn(T, T) -> bool) -> bool {
    let (mut p, mut t) = (0, 0);
    // The last `*` seen and the text position it was tried at.
    let mut last_star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == any || (pattern[p] != star && same(pattern[p], text[t]))) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == star {
            last_star = Some((p, t));
            p += 1;
        } else if let Some((star_p, star_t)) = last_star {
            // Let the last `*` swallow one more character and try again from there.
            p = star_p + 1;
            t = star_t + 1;
            last_star = Some((star_p, star_t + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == star)
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn wildcards() {
        assert!(matches("sqs:*", "sqs:SendMessage", true));
        assert!(matches("sqs:send*", "sqs:SendMessage", true));
        assert!(!matches("sqs:send*", "sqs:SendMessage", false));
        assert!(matches("sqs:?endMessage", "sqs:SendMessage", false));
        assert!(!matches("sqs:?endMessage", "sqs:endMessage", false));
        assert!(matches("*", "", false));
        assert!(matches("arn:aws:sqs:*:123456789012:orders-*", "arn:aws:sqs:us-east-1:123456789012:orders-eu", false));
        assert!(!matches("arn:aws:sqs:*:123456789012:orders-*", "arn:aws:sqs:us-east-1:123456789012:leads", false));
        assert!(matches("a*b*c", "aXXbYYc", false));
        assert!(!matches("a*b*c", "aXXbYY", false));
        assert!(matches("*Message*", "sqs:ChangeMessageVisibility", false));
        assert!(matches("arn:aws:sqs:*:*:café-?", "arn:aws:sqs:eu:1:café-1", false), "beyond ASCII");
        assert!(matches("ÉTÉ*", "été-2026", true));
    }

    #[test]
    fn many_stars_against_a_near_miss() {
        // The worst case for backtracking matchers; this one is quadratic at most.
        assert!(!matches(&"*a".repeat(2_000), &("a".repeat(4_000) + "b"), false));
        assert!(matches(&"*a".repeat(2_000), &"a".repeat(4_000), false));
    }
}
