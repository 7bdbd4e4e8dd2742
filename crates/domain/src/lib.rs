//! Conduit's domain: the types the API talks about and the rules they obey.
//!
//! Nothing here performs I/O. The server and the Python binding both build on it, and the
//! store crates return its types, so the rules live in exactly one place.

pub mod cursor;
pub mod id;
pub mod limits;
pub mod markdown;
pub mod model;
pub mod names;
pub mod password;
pub mod search;
pub mod slug;
pub mod token;
pub mod validation;

pub use model::{Article, Comment, Profile, User};
pub use names::{Email, Username};
pub use slug::Slug;
pub use validation::{Errors, Field};
