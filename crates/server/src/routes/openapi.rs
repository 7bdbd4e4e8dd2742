//! The OpenAPI document, generated from the handlers' annotations, served at
//! `GET /api/openapi.json`, with interactive docs at `GET /docs` (assets built into the binary).

use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
use utoipa::openapi::{RefOr, Response, ResponseBuilder};
use utoipa::{Modify, OpenApi};

use crate::error::ErrorBody;
use crate::routes::{
    account, admin, articles, comments, export, feeds, moderation, notifications, profiles, session, tags, users,
};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Conduit",
        description = "The RealWorld \"Conduit\" API, served by Conduit. Errors always have the shape \
            `{\"errors\":{\"<field>\":[\"<message>\"]}}`. Authenticate with `Authorization: Token <jwt>`.",
        license(name = "MIT"),
        version = "2.0.0"
    ),
    servers((url = "/api")),
    paths(
        users::login, users::register, users::current, users::update,
        profiles::show, profiles::follow, profiles::unfollow, profiles::block, profiles::unblock, profiles::blocks,
        articles::feed, articles::list, articles::create, articles::show, articles::update, articles::delete,
        comments::list, comments::create, comments::remove,
        articles::favorite, articles::unfavorite,
        tags::list,
        admin::list, admin::update,
        session::login, session::logout,
        account::verify, account::resend, account::request_reset, account::confirm_reset, account::revert_email,
        account::delete, export::export,
        feeds::all, feeds::tag, feeds::author,
        moderation::report_article, moderation::report_comment, moderation::report_profile, moderation::my_reports,
        moderation::queue, moderation::act, moderation::log,
        notifications::list, notifications::read_one, notifications::read_all, notifications::stream,
    ),
    components(schemas(ErrorBody)),
    tags(
        (name = "Articles"), (name = "Comments"), (name = "Favorites"), (name = "Profile"), (name = "Tags"),
        (name = "User and Authentication"), (name = "Admin"),
        (name = "Moderation", description = "Reports by any user; the report queue, actions (dismiss, hide, unhide, delete, suspend, unsuspend, purge) and the append-only moderation log for moderators and admins"),
        (name = "Notifications", description = "Your inbox (follows, comments, replies, favorites, moderators' actions on your content) and its live stream of Server-Sent Events; README \"Notifications\" says how a client resumes"),
        (name = "Feeds", description = "RSS 2.0 and Atom 1.0 of the newest 20 articles (all, a tag's, an author's) with their sanitized HTML; conditional with ETag and Last-Modified"),
        (name = "Account lifecycle", description = "Verification, password reset, email change, deletion and export; mail is described in the README"),
    ),
    modifiers(&CommonResponses)
)]
pub struct ApiDoc;

/// Adds what every operation can answer: the token scheme, 422 for a bad request, 413 for an
/// oversized body, 415 for a body not sent as JSON, 408 for a body sent too slowly, and 503
/// when the server sheds load, times out, or the database is away.
struct CommonResponses;

impl Modify for CommonResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "Token",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "Authorization",
                "`Token <jwt>` (or `Bearer <jwt>`), the token from login or registration",
            ))),
        );
        let error = |description: &str| -> RefOr<Response> {
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    utoipa::openapi::ContentBuilder::new()
                        .schema(Some(utoipa::openapi::Ref::from_schema_name("GenericErrorModel")))
                        .build(),
                )
                .build()
                .into()
        };
        for item in openapi.paths.paths.values_mut() {
            for operation in [&mut item.get, &mut item.post, &mut item.put, &mut item.delete].into_iter().flatten() {
                let responses = &mut operation.responses.responses;
                responses.entry("422".into()).or_insert_with(|| {
                    error("Invalid request: malformed JSON, a broken rule, or a bad query parameter")
                });
                responses
                    .entry("503".into())
                    .or_insert_with(|| error("Overloaded, timed out, or the database is unavailable; retry"));
                if operation.request_body.is_some() {
                    responses.entry("413".into()).or_insert_with(|| error("Request body too large"));
                    responses
                        .entry("415".into())
                        .or_insert_with(|| error("The body was not sent with `Content-Type: application/json`"));
                    responses
                        .entry("408".into())
                        .or_insert_with(|| error("The body did not arrive within `CONDUIT_BODY_TIMEOUT`"));
                }
            }
        }
    }
}
