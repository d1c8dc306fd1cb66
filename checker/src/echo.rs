//! Input echoed in error messages, cut to a bound: a 10 MB key must not make a 10 MB message.
//!
//! ```
//! use checker::echo::{Echo, ECHO_BYTES_MAX};
//!
//! assert_eq!(Echo("short").to_string(), "short");
//! let long = "é".repeat(ECHO_BYTES_MAX);
//! let shown = Echo(&long).to_string();
//! assert!(shown.len() < ECHO_BYTES_MAX + 40);
//! assert!(shown.ends_with(&format!("… ({} bytes)", long.len())));
//! ```

use std::fmt::{self, Display, Write};

/// Most bytes of an input value an error message shows; the rest is an ellipsis and the length.
pub const ECHO_BYTES_MAX: usize = 256;
/// Most bytes of an error's message (which may quote a value through a parser's own words).
pub const MESSAGE_BYTES_MAX: usize = 4 * ECHO_BYTES_MAX;

/// Shows `T` as its `Display` does, cut to [`ECHO_BYTES_MAX`] bytes (on a character boundary)
/// with `… (N bytes)` after a cut, N the full length. The full text is never built.
pub struct Echo<T>(pub T);

impl<T: Display> Display for Echo<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        bounded(f, &self.0, ECHO_BYTES_MAX)
    }
}

/// Shows `T` cut to [`MESSAGE_BYTES_MAX`] bytes, as [`Echo`] does: for error messages.
pub struct Message<T>(pub T);

impl<T: Display> Display for Message<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        bounded(f, &self.0, MESSAGE_BYTES_MAX)
    }
}

/// Writes `value` to `f`, cut to `max` bytes, then the ellipsis and full length if cut.
fn bounded(f: &mut fmt::Formatter<'_>, value: &dyn Display, max: usize) -> fmt::Result {
    let mut cut = Cut {
        out: f,
        left: max,
        total: 0,
        cut: false,
    };
    write!(cut, "{value}")?;
    let (total, was_cut) = (cut.total, cut.cut);
    if was_cut {
        write!(f, "… ({total} bytes)")?;
    }
    Ok(())
}

/// A writer passing on at most `left` bytes, counting all.
struct Cut<'a, 'b> {
    out: &'a mut fmt::Formatter<'b>,
    left: usize,
    total: usize,
    cut: bool,
}

impl Write for Cut<'_, '_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.total += s.len();
        if self.cut {
            return Ok(());
        }
        if s.len() <= self.left {
            self.left -= s.len();
            return self.out.write_str(s);
        }
        let mut end = self.left;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        self.cut = true;
        self.left = 0;
        self.out.write_str(&s[..end])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_on_a_char_boundary_with_the_full_length() {
        assert_eq!(Echo(5).to_string(), "5");
        let exact = "x".repeat(ECHO_BYTES_MAX);
        assert_eq!(Echo(&exact).to_string(), exact);
        let long = format!("{exact}é");
        assert_eq!(
            Echo(&long).to_string(),
            format!("{exact}… ({} bytes)", long.len())
        );
        let wide = format!("a{}", "€".repeat(ECHO_BYTES_MAX));
        let shown = Echo(&wide).to_string();
        let (head, tail) = shown.split_once('…').unwrap();
        assert!(head.len() <= ECHO_BYTES_MAX && head.len() > ECHO_BYTES_MAX - 3);
        assert_eq!(tail, format!(" ({} bytes)", wide.len()));
        let value = serde_json::Value::from("v".repeat(10 << 20));
        assert!(Message(&value).to_string().len() < MESSAGE_BYTES_MAX + 30);
    }
}
