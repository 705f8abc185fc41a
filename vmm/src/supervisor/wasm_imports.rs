//! Which WASI functions a WebAssembly module imports, so that the
//! supervisor starts only the device processes the module can use.
//!
//! This reads the module's header and its sections up to the import
//! section, nothing else: section ids and sizes, import names and the
//! shapes of import descriptors, each length checked against what is left.
//! The module is the user's input; everything else in it (and its
//! validation) is the Wasm runtime's business, inside the jailed vm.

const MAGIC: &[u8; 8] = b"\0asm\x01\0\0\0";
const SECTION_CUSTOM: u8 = 0;
const SECTION_TYPE: u8 = 1;
const SECTION_IMPORT: u8 = 2;

/// The module's header or import section cannot be read.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("the module's import section cannot be read")]
pub struct Unreadable;

/// The devices a module's imports call for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Needs {
    /// fd_write or fd_read: the consoles.
    pub console: bool,
    /// random_get: the rng.
    pub rng: bool,
}

impl Needs {
    /// What the WASI functions `names` call for.
    pub fn of(names: &[&[u8]]) -> Needs {
        let mut needs = Needs::default();
        for name in names {
            match *name {
                b"fd_write" | b"fd_read" | b"fd_pwrite" | b"fd_pread" => needs.console = true,
                b"random_get" => needs.rng = true,
                _ => {}
            }
        }
        needs
    }
}

/// The names of the functions `module` imports from
/// `wasi_snapshot_preview1`.
pub fn wasi_functions(module: &[u8]) -> Result<Vec<&[u8]>, Unreadable> {
    let mut r = Reader(module.strip_prefix(MAGIC.as_slice()).ok_or(Unreadable)?);
    while !r.0.is_empty() {
        let id = r.byte()?;
        let size = r.uleb()? as usize;
        let mut section = Reader(r.take(size)?);
        match id {
            SECTION_CUSTOM | SECTION_TYPE => continue,
            SECTION_IMPORT => return imports(&mut section),
            // Imports come before every other section.
            _ => return Ok(Vec::new()),
        }
    }
    Ok(Vec::new())
}

fn imports<'a>(r: &mut Reader<'a>) -> Result<Vec<&'a [u8]>, Unreadable> {
    let count = r.uleb()?;
    let mut found = Vec::new();
    for _ in 0..count {
        let module = r.name()?;
        let field = r.name()?;
        let kind = r.byte()?;
        match kind {
            // func: a type index; tag: an attribute and a type index.
            0 => {
                r.uleb()?;
            }
            4 => {
                r.byte()?;
                r.uleb()?;
            }
            // table: a reference type, then limits.
            1 => {
                r.byte()?;
                r.limits()?;
            }
            2 => r.limits()?,
            // global: a value type and mutability.
            3 => {
                r.byte()?;
                r.byte()?;
            }
            _ => return Err(Unreadable),
        }
        if kind == 0 && module == b"wasi_snapshot_preview1" {
            found.push(field);
        }
    }
    Ok(found)
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Result<u8, Unreadable> {
        let (&b, rest) = self.0.split_first().ok_or(Unreadable)?;
        self.0 = rest;
        Ok(b)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], Unreadable> {
        if n > self.0.len() {
            return Err(Unreadable);
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    /// An unsigned LEB128 of at most 64 bits.
    fn uleb(&mut self) -> Result<u64, Unreadable> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            value |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(Unreadable)
    }

    fn name(&mut self) -> Result<&'a [u8], Unreadable> {
        let len = self.uleb()? as usize;
        self.take(len)
    }

    /// Limits: flags (bit 0: a maximum follows), a minimum, a maximum.
    fn limits(&mut self) -> Result<(), Unreadable> {
        let flags = self.byte()?;
        self.uleb()?;
        if flags & 1 != 0 {
            self.uleb()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A module with a type section and imports of `names` from WASI (all
    /// of type 0), plus a memory import from "env".
    fn module(names: &[&str]) -> Vec<u8> {
        let mut imports = vec![names.len() as u8 + 1];
        for name in names {
            imports.push(22);
            imports.extend_from_slice(b"wasi_snapshot_preview1");
            imports.push(name.len() as u8);
            imports.extend_from_slice(name.as_bytes());
            imports.extend_from_slice(&[0, 0]);
        }
        imports.extend_from_slice(&[3, b'e', b'n', b'v', 3, b'm', b'e', b'm', 2, 1, 1, 2]);
        let mut m = MAGIC.to_vec();
        m.extend_from_slice(&[SECTION_TYPE, 4, 1, 0x60, 0, 0]);
        m.push(SECTION_IMPORT);
        m.push(imports.len() as u8);
        m.extend_from_slice(&imports);
        m
    }

    fn needs(module: &[u8]) -> Result<Needs, Unreadable> {
        Ok(Needs::of(&wasi_functions(module)?))
    }

    #[test]
    fn finds_what_the_imports_need() {
        let m = module(&["fd_write", "proc_exit"]);
        assert_eq!(
            wasi_functions(&m).unwrap(),
            vec![b"fd_write".as_slice(), b"proc_exit"]
        );
        assert_eq!(
            needs(&m),
            Ok(Needs {
                console: true,
                rng: false
            })
        );
        let m = module(&["random_get"]);
        assert_eq!(
            needs(&m),
            Ok(Needs {
                console: false,
                rng: true
            })
        );
        assert_eq!(needs(&module(&[])), Ok(Needs::default()));
        assert_eq!(needs(MAGIC), Ok(Needs::default()));
    }

    #[test]
    fn every_truncation_and_bad_header_is_unreadable_not_a_panic() {
        let m = module(&["fd_write", "random_get"]);
        for len in 0..m.len() {
            let _ = needs(&m[..len]);
        }
        assert_eq!(needs(b"\0asm\x02\0\0\0"), Err(Unreadable));
        assert_eq!(needs(b"ELF"), Err(Unreadable));
        // A section size past the end, an endless LEB128.
        let mut big = MAGIC.to_vec();
        big.extend_from_slice(&[SECTION_IMPORT, 0xff, 0xff, 0xff, 0xff, 0x0f]);
        assert_eq!(needs(&big), Err(Unreadable));
        let mut leb = MAGIC.to_vec();
        leb.push(SECTION_IMPORT);
        leb.extend_from_slice(&[0x80; 11]);
        assert_eq!(needs(&leb), Err(Unreadable));
    }
}
