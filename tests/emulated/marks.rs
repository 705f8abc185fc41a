//! Marker lines a guest prints on its serial console: `CORDON-MARK NAME VALUE...`.

use std::time::Duration;

pub const MARK: &str = "CORDON-MARK";

/// One marker, with when the host read it (from the machine's start).
#[derive(Clone, Debug)]
pub struct Mark {
    pub name: String,
    pub value: String,
    pub at: Duration,
}

/// The marker in `line`, if any. Kernel messages may share the line, so the
/// marker is looked for anywhere in it; a carriage return is dropped.
pub fn parse(line: &str, at: Duration) -> Option<Mark> {
    let rest = &line[line.find(MARK)? + MARK.len()..];
    let rest = rest.trim_end_matches('\r').trim();
    let (name, value) = rest.split_once(' ').unwrap_or((rest, ""));
    if name.is_empty() {
        return None;
    }
    Some(Mark {
        name: name.to_owned(),
        value: value.trim().to_owned(),
        at,
    })
}

#[cfg(test)]
mod tests {
    use super::parse;
    use std::time::Duration;

    #[test]
    fn markers_are_found_anywhere_in_a_line() {
        let at = Duration::ZERO;
        let m = parse("CORDON-MARK host-data ok\r", at).unwrap();
        assert_eq!((m.name.as_str(), m.value.as_str()), ("host-data", "ok"));
        let m = parse("[    1.2] x CORDON-MARK exit 0", at).unwrap();
        assert_eq!((m.name.as_str(), m.value.as_str()), ("exit", "0"));
        let m = parse("CORDON-MARK done", at).unwrap();
        assert_eq!((m.name.as_str(), m.value.as_str()), ("done", ""));
        assert!(parse("CORDON-MARK ", at).is_none());
        assert!(parse("no marker here", at).is_none());
    }
}
