//! The unified social credit code (统一社会信用代码, GB 32100-2015): the 18-character identity of
//! a legal entity in China. The registry keeps one covered-entity account per code.
//!
//! Characters come from the 31-symbol alphabet `0-9A-Y` without I, O, S, V and Z (each worth
//! its position, 0 to 30); the 18th is a check character: with weights 3^i mod 31 for the
//! first 17 positions, check = 31 - (sum of value x weight mod 31), 31 written as `0`.

/// The code's alphabet, each character worth its index.
const ALPHABET: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
/// Characters in a code.
pub const USCC_LEN: usize = 18;

fn value(c: u8) -> Option<u32> {
    ALPHABET.iter().position(|&a| a == c).map(|v| v as u32)
}

/// The check character for the first 17 characters, or `None` if one is outside the alphabet.
fn check_char(body: &[u8]) -> Option<u8> {
    let mut weight = 1u32;
    let mut sum = 0u32;
    for &c in body {
        sum += value(c)? * weight;
        weight = weight * 3 % 31;
    }
    Some(ALPHABET[((31 - sum % 31) % 31) as usize])
}

/// Whether `code` is a well-formed code with the right check character; why not if it is not.
pub fn check_uscc(code: &str) -> Result<(), &'static str> {
    let bytes = code.as_bytes();
    if bytes.len() != USCC_LEN {
        return Err("must be 18 characters");
    }
    if bytes.iter().any(|&c| value(c).is_none()) {
        return Err("characters must be 0-9 or A-Y without I, O, S, V, Z");
    }
    if check_char(&bytes[..USCC_LEN - 1]) != Some(bytes[USCC_LEN - 1]) {
        return Err("check character is wrong");
    }
    Ok(())
}

/// The full code for a 17-character body (its check character appended), for fixtures and the
/// demo; `None` if the body is not 17 characters of the alphabet.
pub fn complete_uscc(body: &str) -> Option<String> {
    if body.len() != USCC_LEN - 1 {
        return None;
    }
    let check = check_char(body.as_bytes())?;
    Some(format!("{body}{}", check as char))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_published_example_checks() {
        // 91350100M000100Y4 (values 9,1,3,5,0,1,0,0,21,0,0,0,1,0,0,30,4) with weights
        // 1,3,9,27,19,26,16,17,20,29,25,13,8,24,10,30,28:
        // 9 + 3 + 27 + 135 + 0 + 26 + 0 + 0 + 420 + 0 + 0 + 0 + 8 + 0 + 0 + 900 + 112 = 1640;
        // 1640 mod 31 = 28; 31 - 28 = 3, so the check character is '3'.
        assert_eq!(check_uscc("91350100M000100Y43"), Ok(()));
        assert_eq!(
            complete_uscc("91350100M000100Y4").as_deref(),
            Some("91350100M000100Y43")
        );
    }

    #[test]
    fn malformed_codes_are_named() {
        assert_eq!(
            check_uscc("91350100M000100Y44"),
            Err("check character is wrong")
        );
        assert_eq!(
            check_uscc("91350100M000100Y4"),
            Err("must be 18 characters")
        );
        assert_eq!(
            check_uscc("91350100I000100Y43"),
            Err("characters must be 0-9 or A-Y without I, O, S, V, Z")
        );
        assert_eq!(
            check_uscc("91350100M000100Y4I"),
            Err("characters must be 0-9 or A-Y without I, O, S, V, Z")
        );
        assert_eq!(
            check_uscc("９1350100M000100Y4"),
            Err("must be 18 characters")
        );
        assert_eq!(complete_uscc("short"), None);
    }

    #[test]
    fn a_check_of_31_is_written_zero() {
        // 1A000000000000000: 1 x 1 + 10 x 3 = 31, 31 mod 31 = 0, and 31 - 0 = 31 is written '0'.
        // 10000000000000000: 1 x 1 = 1, 31 - 1 = 30, written 'Y'.
        assert_eq!(
            complete_uscc("1A000000000000000").as_deref(),
            Some("1A0000000000000000")
        );
        assert_eq!(
            complete_uscc("10000000000000000").as_deref(),
            Some("10000000000000000Y")
        );
    }
}
