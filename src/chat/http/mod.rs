//! `/api/v1/chat/…`: thin handlers (parse → [`super::service`] /
//! [`super::calls`] → respond). Every route is `POST` with a JSON body, as
//! the ChatCLI surface has it, and needs a signed-in member of the project
//! (`Authorization: Bearer <access token>` + `X-Project-Id`, any role); an
//! API key is answered 403.

pub mod calls;
pub mod chats;
pub mod messages;

use crate::routes::allow;
use actix_web::{Route, web};

/// The routes, relative to the `/chat` scope.
pub fn configure(cfg: &mut web::ServiceConfig) {
    let routes: [(&str, Route); 17] = [
        ("/fetch-chats", web::post().to(chats::fetch_chats)),
        ("/fetch-archived", web::post().to(chats::fetch_archived)),
        ("/create-chat", web::post().to(chats::create_chat)),
        ("/create-group", web::post().to(chats::create_group)),
        ("/add-members", web::post().to(chats::add_members)),
        ("/remove-members", web::post().to(chats::remove_members)),
        ("/rename-group", web::post().to(chats::rename_group)),
        ("/get-members", web::post().to(chats::get_members)),
        ("/archive-chat", web::post().to(chats::archive_chat)),
        ("/unarchive-chat", web::post().to(chats::unarchive_chat)),
        ("/messages", web::post().to(messages::list_messages)),
        ("/send-message", web::post().to(messages::send_message)),
        ("/mark-read", web::post().to(messages::mark_read)),
        ("/search", web::post().to(messages::search_messages)),
        ("/start-call", web::post().to(calls::start_call)),
        ("/join-call", web::post().to(calls::join_call)),
        ("/end-call", web::post().to(calls::end_call)),
    ];
    for (path, route) in routes {
        cfg.service(
            web::resource(path)
                .route(route)
                .default_service(allow(&["POST"])),
        );
    }
}
