//! What an `.npy` header declares, checked against the bytes that are there before anything is
//! allocated for the array, and `.npz` members read with a bound: a header (or a zip entry)
//! declaring terabytes in a small file is an error naming the sizes, not an allocation failure.
//! `ndarray-npy` decodes the array afterwards; this module only reads what it needs to check.

use std::io::Read;

/// Bytes read from an `.npz` member to find its `.npy` header.
const HEADER_PREFIX: u64 = 1 << 16;

/// The fields of an `.npy` header that size the array.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct NpyHeader {
    /// The `descr` string, e.g. `<f4` or `|u1`.
    pub descr: String,
    /// The array's shape.
    pub shape: Vec<usize>,
    /// Bytes before the data (magic, version, length and header text).
    pub data_offset: usize,
}

impl NpyHeader {
    /// Bytes of one element from `descr`'s trailing digits (`<f4` → 4), when it has them.
    fn item_size(&self) -> Option<u64> {
        let digits: String = self
            .descr
            .chars()
            .rev()
            .take_while(|c| c.is_ascii_digit())
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        digits.parse().ok()
    }

    /// Bytes of data the header declares (`None` when it overflows or the type has no size).
    pub fn data_bytes(&self) -> Option<u64> {
        self.shape
            .iter()
            .try_fold(self.item_size()?, |acc, &d| acc.checked_mul(d as u64))
    }
}

/// The quoted value after `'key':` in a header dictionary.
fn quoted_value<'a>(header: &'a str, key: &str) -> Option<&'a str> {
    let rest = &header[header.find(&format!("'{key}'"))? + key.len() + 2..];
    let rest = rest.trim_start().strip_prefix(':')?.trim_start();
    let quote = rest.chars().next().filter(|c| *c == '\'' || *c == '"')?;
    let body = &rest[1..];
    Some(&body[..body.find(quote)?])
}

/// Reads the header at the start of `bytes` (which need hold only the header).
pub(crate) fn parse_npy_header(bytes: &[u8]) -> Result<NpyHeader, String> {
    if !bytes.starts_with(b"\x93NUMPY") {
        return Err("no \\x93NUMPY magic".into());
    }
    let major = *bytes.get(6).ok_or("truncated header (no version)")?;
    let (len, start): (usize, usize) = match major {
        1 => {
            let b = bytes.get(8..10).ok_or("truncated header (no length)")?;
            (usize::from(u16::from_le_bytes([b[0], b[1]])), 10)
        }
        2 | 3 => {
            let b = bytes.get(8..12).ok_or("truncated header (no length)")?;
            (u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize, 12)
        }
        v => return Err(format!("unsupported .npy format version {v}")),
    };
    let text = bytes.get(start..start.saturating_add(len)).ok_or_else(|| {
        format!(
            "truncated header: it declares {len} bytes of header text, {} are there",
            bytes.len().saturating_sub(start)
        )
    })?;
    let text = std::str::from_utf8(text).map_err(|_| "the header is not text")?;
    let descr = quoted_value(text, "descr")
        .ok_or("the header has no 'descr'")?
        .to_string();
    let shape_at = text.find("'shape'").ok_or("the header has no 'shape'")?;
    let rest = &text[shape_at..];
    let open = rest
        .find('(')
        .ok_or("the header's 'shape' is not a tuple")?;
    let close = rest
        .find(')')
        .ok_or("the header's 'shape' is not a tuple")?;
    let shape = rest
        .get(open + 1..close)
        .ok_or("the header's 'shape' is not a tuple")?
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.trim_end_matches('L')
                .parse::<usize>()
                .map_err(|_| format!("the header's shape has `{s}`, not a size"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(NpyHeader {
        descr,
        shape,
        data_offset: start + len,
    })
}

/// Refuses a header whose declared data is more than the `available` bytes after it.
pub(crate) fn check_declared_size(header: &NpyHeader, available: u64) -> Result<(), String> {
    match header.data_bytes() {
        Some(n) if n <= available => Ok(()),
        Some(n) => Err(format!(
            "truncated: the header declares shape {:?} of {} ({n} bytes) but only {available} \
             bytes of data follow it",
            header.shape, header.descr
        )),
        None => Err(format!(
            "the header declares shape {:?} of {}: more bytes than can be addressed",
            header.shape, header.descr
        )),
    }
}

/// The members of an `.npz` archive as `(name, bytes)`, each read only up to the size its zip
/// entry declares, and refused when that size is more than the entry's compressed bytes could
/// expand to or when the `.npy` header inside declares more data than the entry holds.
pub(crate) fn read_npz_members(bytes: &[u8]) -> Result<Vec<(String, Vec<u8>)>, String> {
    let mut archive =
        zip::ZipArchive::new(std::io::Cursor::new(bytes)).map_err(|e| e.to_string())?;
    let mut members = Vec::new();
    for i in 0..archive.len() {
        let entry = archive.by_index(i).map_err(|e| e.to_string())?;
        let name = entry.name().to_string();
        let declared = entry.size();
        let compressed = entry.compressed_size();
        let most = compressed
            .saturating_mul(super::DEFLATE_MAX_RATIO as u64)
            .saturating_add(4096);
        if declared > most {
            return Err(format!(
                "member `{name}` declares {declared} bytes from {compressed} compressed bytes, \
                 more than compression can give: a corrupt or malicious archive"
            ));
        }
        // The header first (NumPy pads it to a multiple of 64 bytes; 64 KiB is plenty)…
        let mut entry = entry;
        let mut data = Vec::new();
        (&mut entry)
            .take(declared.min(HEADER_PREFIX))
            .read_to_end(&mut data)
            .map_err(|e| format!("member `{name}`: {e}"))?;
        let header = parse_npy_header(&data).map_err(|e| format!("member `{name}`: {e}"))?;
        let offset = header.data_offset as u64;
        check_declared_size(&header, declared.saturating_sub(offset))
            .map_err(|e| format!("member `{name}`: {e}"))?;
        // …then only as much data as the header declares, and one byte to see if more follow.
        let wanted = offset + header.data_bytes().unwrap_or(0);
        let have = data.len() as u64;
        (&mut entry)
            .take((wanted + 1).saturating_sub(have))
            .read_to_end(&mut data)
            .map_err(|e| format!("member `{name}`: {e}"))?;
        let got = data.len() as u64;
        if got < wanted {
            return Err(format!(
                "member `{name}`: truncated: its header declares {} bytes of data, {} are there",
                wanted - offset,
                got.saturating_sub(offset)
            ));
        }
        if got > wanted {
            return Err(format!(
                "member `{name}` holds more data than its header declares (shape {:?} of {}, \
                 {} bytes)",
                header.shape,
                header.descr,
                wanted - offset
            ));
        }
        members.push((name, data));
    }
    Ok(members)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn npy(descr: &str, shape: &str, data: &[u8]) -> Vec<u8> {
        let mut text =
            format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
        while (10 + text.len() + 1) % 64 != 0 {
            text.push(' ');
        }
        text.push('\n');
        let mut out = b"\x93NUMPY\x01\x00".to_vec();
        out.extend_from_slice(&(text.len() as u16).to_le_bytes());
        out.extend_from_slice(text.as_bytes());
        out.extend_from_slice(data);
        out
    }

    #[test]
    fn headers_give_shape_type_and_size() {
        let bytes = npy("<f4", "(2, 3)", &[0; 24]);
        let h = parse_npy_header(&bytes).unwrap();
        assert_eq!(h.descr, "<f4");
        assert_eq!(h.shape, vec![2, 3]);
        assert_eq!(h.data_offset, bytes.len() - 24);
        assert_eq!(h.data_bytes(), Some(24));
        check_declared_size(&h, 24).unwrap();
        let scalar = parse_npy_header(&npy("|u1", "()", &[7])).unwrap();
        assert_eq!((scalar.shape.len(), scalar.data_bytes()), (0, Some(1)));
        let one = parse_npy_header(&npy("|u1", "(5,)", &[0; 5])).unwrap();
        assert_eq!(one.shape, vec![5]);
    }

    #[test]
    fn a_huge_declared_shape_is_refused_before_reading() {
        let h = parse_npy_header(&npy("|u1", "(1000000000000, 28, 28)", &[0; 100])).unwrap();
        let err = check_declared_size(&h, 100).unwrap_err();
        assert!(
            err.contains("784000000000000 bytes") && err.contains("only 100"),
            "{err}"
        );
        let h = parse_npy_header(&npy("<f8", "(18446744073709551615, 2)", &[])).unwrap();
        let err = check_declared_size(&h, 0).unwrap_err();
        assert!(err.contains("more bytes than can be addressed"), "{err}");
    }

    #[test]
    fn malformed_headers_are_errors() {
        assert!(parse_npy_header(b"\x93NUMPY\x01").is_err());
        assert!(parse_npy_header(b"\x93NUMPY\x09\x00\x00\x00").is_err());
        let mut long = b"\x93NUMPY\x01\x00\xff\xff".to_vec();
        long.extend_from_slice(b"{'descr': '|u1'");
        let err = parse_npy_header(&long).unwrap_err();
        assert!(err.contains("65535 bytes of header text"), "{err}");
        let bad = npy("|u1", "(2, x)", &[0; 2]);
        assert!(parse_npy_header(&bad).unwrap_err().contains("`x`"));
    }
}
