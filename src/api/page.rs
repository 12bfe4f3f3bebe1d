//! Lists come a page at a time: `?limit=N` (1 to 500, 100 by default) items in ascending order of
//! their key, and `?after=KEY` for the page after the item with that key. The answer is
//! `{"items": [...], "next": KEY or null}`: `next` is the `after` of the next page. The audit
//! trail alone goes newest first: `?before=ID` for the page of older events, and `next` is its
//! `before`.

use serde::{Deserialize, Serialize};

use super::error::ApiError;

/// Longest page.
pub const MAX_LIMIT: usize = 500;
/// A page's length when the request names none.
pub const DEFAULT_LIMIT: usize = 100;

/// The paging parameters of a list request.
#[derive(Debug, Deserialize)]
pub struct PageQuery {
    pub limit: Option<usize>,
    pub after: Option<String>,
}

/// One page of a list.
#[derive(Debug, Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
}

/// A page's length: `requested`, or [`DEFAULT_LIMIT`] when none.
pub fn limit(requested: Option<usize>) -> Result<usize, ApiError> {
    match requested {
        None => Ok(DEFAULT_LIMIT),
        Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        Some(_) => Err(ApiError::Invalid(format!("limit must be 1 to {MAX_LIMIT}"))),
    }
}

impl PageQuery {
    /// The page of `items` this query asks for, the items in ascending order of `key`.
    pub fn page<T>(
        &self,
        mut items: Vec<T>,
        key: impl Fn(&T) -> String,
    ) -> Result<Page<T>, ApiError> {
        let limit = limit(self.limit)?;
        items.sort_by_key(|item| key(item));
        if let Some(after) = &self.after {
            items.retain(|item| key(item) > *after);
        }
        let next = (items.len() > limit).then(|| key(&items[limit - 1]));
        items.truncate(limit);
        Ok(Page { items, next })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(limit: Option<usize>, after: Option<&str>) -> PageQuery {
        PageQuery {
            limit,
            after: after.map(str::to_owned),
        }
    }

    #[test]
    fn pages_walk_every_item_once_in_order() {
        let items: Vec<String> = ["d", "a", "c", "b", "e"].map(String::from).to_vec();
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let page = query(Some(2), after.as_deref())
                .page(items.clone(), Clone::clone)
                .unwrap();
            seen.extend(page.items);
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        assert_eq!(seen, ["a", "b", "c", "d", "e"]);
        let all = query(None, None).page(items, Clone::clone).unwrap();
        assert_eq!((all.items.len(), all.next), (5, None));
        for bad in [0, MAX_LIMIT + 1] {
            assert!(query(Some(bad), None)
                .page(vec![1], |n| n.to_string())
                .is_err());
        }
    }
}
