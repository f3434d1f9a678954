//! The screens of the app, one file each.

pub mod auth;
pub mod chat_screen;
pub mod room_list;
pub mod room_view;
