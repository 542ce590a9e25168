//! CSV fields out: the one quoting rule every CSV we write uses (scores, rejects' neighbours,
//! feature tables, the rank pass).

/// Appends a CSV field, quoted when it holds a comma, quote, line break or edge space.
pub fn push_csv_field(out: &mut Vec<u8>, s: &[u8]) {
    let needs = s
        .iter()
        .any(|&c| c == b',' || c == b'"' || c == b'\n' || c == b'\r')
        || s.first().is_some_and(|c| c.is_ascii_whitespace())
        || s.last().is_some_and(|c| c.is_ascii_whitespace());
    if !needs {
        out.extend_from_slice(s);
        return;
    }
    out.push(b'"');
    for &c in s {
        if c == b'"' {
            out.push(b'"');
        }
        out.push(c);
    }
    out.push(b'"');
}

/// A CSV field: quoted when it holds a comma, quote, line break or edge space.
pub fn csv_field(s: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(s.len() + 2);
    push_csv_field(&mut v, s);
    v
}

/// Shortest round-trip digits of a float.
#[inline]
pub fn push_f64(out: &mut Vec<u8>, x: f64) {
    let mut b = ryu::Buffer::new();
    out.extend_from_slice(b.format(x).as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_only_what_needs_quoting() {
        assert_eq!(csv_field(b"plain"), b"plain");
        assert_eq!(csv_field(b"a,b"), b"\"a,b\"");
        assert_eq!(csv_field(b"say \"hi\""), b"\"say \"\"hi\"\"\"");
        assert_eq!(csv_field(b" edge"), b"\" edge\"");
        assert_eq!(csv_field(b"two\nlines"), b"\"two\nlines\"");
        let mut out = Vec::new();
        push_f64(&mut out, 0.1);
        assert_eq!(out, b"0.1");
    }
}
