//! The screens of the app, one file each.

pub mod attachment;
pub mod auth;
pub mod chat_screen;
pub mod confirm;
pub mod deferred;
pub mod members;
pub mod notices;
pub mod room_admin;
pub mod room_list;
pub mod room_view;
pub mod security;
pub mod unlock;
