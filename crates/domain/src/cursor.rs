//! Page cursors: where the next page of a listing starts, handed to clients as an opaque
//! string (`nextCursor`) and accepted back (`?cursor=`). Inside it is the id of the last item
//! served, so the next page is a keyset seek (`id < cursor`), as cheap a million items in as
//! at the start, where an offset would make the database walk past every skipped item.

/// The cursor after the item with this id.
pub fn encode(last_id: i64) -> String {
    format!("c1{last_id:x}")
}

/// The id inside a cursor this server made, or `None` for anything else.
pub fn decode(cursor: &str) -> Option<i64> {
    let hex = cursor.strip_prefix("c1")?;
    if hex.is_empty() || hex.len() > 16 || !hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return None;
    }
    i64::from_str_radix(hex, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_anything_else() {
        for id in [1, 255, 1_000_000, i64::MAX] {
            assert_eq!(decode(&encode(id)), Some(id));
        }
        for bad in ["", "c1", "c2ff", "c1-5", "c1FF", "c1 ff", "c18000000000000000", "42"] {
            assert_eq!(decode(bad), None, "{bad}");
        }
    }
}
