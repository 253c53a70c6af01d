//! `GET /0.2/getmessage?emptymessage=<name>TestMessage`: Sila's empty message
//! templates. Sila's Python SDK fetches five of them when an `App` is made
//! and fails before its first call without them. A template is public
//! data, so no signature is asked for.

use std::collections::HashMap;

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};

use super::errors::SilaApiError;

/// The templates Sila's SDKs ask for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Template {
    Header,
    Entity,
    Identity,
    Crypto,
    LinkAccount,
}

const SUFFIX: &str = "TestMessage";

impl Template {
    const ALL: [Template; 5] = [
        Template::Header,
        Template::Entity,
        Template::Identity,
        Template::Crypto,
        Template::LinkAccount,
    ];

    /// The name before `TestMessage`, as the SDK spells it.
    fn name(self) -> &'static str {
        match self {
            Template::Header => "header",
            Template::Entity => "entity",
            Template::Identity => "identity",
            Template::Crypto => "crypto",
            Template::LinkAccount => "linkAccount",
        }
    }

    /// `<name>TestMessage`; the name's letter case is not significant
    /// (Sila's documents write `HeaderTestMessage`, its SDK `headerTestMessage`).
    fn parse(query: &str) -> Option<Template> {
        let name = query.strip_suffix(SUFFIX)?;
        Self::ALL
            .into_iter()
            .find(|t| t.name().eq_ignore_ascii_case(name))
    }

    /// The message type the template is for: its `message` field, which the
    /// SDK files the template under.
    fn message(self) -> &'static str {
        match self {
            Template::Header => "header_msg",
            Template::Entity => "entity_msg",
            Template::Identity => "identity_msg",
            Template::Crypto => "crypto_msg",
            Template::LinkAccount => "link_account_msg",
        }
    }

    /// Every field the message carries, empty (null) where the caller fills
    /// it in; the SDK drops the fields it leaves null before sending.
    fn body(self) -> Value {
        let header = json!({
            "created": null,
            "app_handle": null,
            "user_handle": null,
            "version": "0.2",
            "crypto": "ETH",
            "reference": null,
        });
        let identity = json!({ "identity_alias": null, "identity_value": null });
        let crypto_entry = json!({
            "crypto_alias": null,
            "crypto_address": null,
            "crypto_code": "ETH",
        });
        let mut body = match self {
            Template::Header => json!({}),
            Template::Entity => json!({
                "address": {
                    "address_alias": null,
                    "street_address_1": null,
                    "street_address_2": null,
                    "city": null,
                    "state": null,
                    "country": null,
                    "postal_code": null,
                },
                "identity": identity,
                "contact": { "contact_alias": null, "phone": null, "email": null },
                "crypto_entry": crypto_entry,
                "entity": {
                    "first_name": null,
                    "last_name": null,
                    "entity_name": null,
                    "birthdate": null,
                    "relationship": "user",
                    "type": null,
                },
            }),
            Template::Identity => json!({ "identity": identity }),
            Template::Crypto => json!({ "crypto_entry": crypto_entry }),
            Template::LinkAccount => json!({
                "public_token": null,
                "account_name": null,
                "selected_account_id": null,
            }),
        };
        body["header"] = header;
        body["message"] = json!(self.message());
        body
    }
}

fn known() -> String {
    Template::ALL
        .iter()
        .map(|t| format!("{}{SUFFIX}", t.name()))
        .collect::<Vec<_>>()
        .join(", ")
}

#[utoipa::path(
    get,
    path = "/0.2/getmessage",
    tag = "sila",
    summary = "Sila's empty message templates (no signature)",
    params(("emptymessage" = String, Query, description = "`<name>TestMessage`, name one of header, entity, identity, crypto, linkAccount (any letter case)")),
    responses(
        (status = 200, description = "The template", body = super::schema::MessageTemplate),
        (status = 400, description = "`emptymessage` missing or naming no template", body = super::schema::SilaError),
    ),
)]
pub async fn getmessage(req: HttpRequest) -> HttpResponse {
    match template(&req) {
        Ok(t) => HttpResponse::Ok().json(t.body()),
        Err(e) => e.respond(None),
    }
}

fn template(req: &HttpRequest) -> Result<Template, SilaApiError> {
    let query = web::Query::<HashMap<String, String>>::from_query(req.query_string())
        .map_err(|e| SilaApiError::new(400, format!("Bad request format: query: {e}")))?;
    let name = query
        .get("emptymessage")
        .filter(|v| !v.is_empty())
        .ok_or_else(|| SilaApiError::field("emptymessage", "is required"))?;
    Template::parse(name).ok_or_else(|| {
        SilaApiError::field(
            "emptymessage",
            format!("no message template named {name:?}; known: {}", known()),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_names_its_message_and_carries_a_header() {
        for t in Template::ALL {
            let name = format!("{}{SUFFIX}", t.name());
            assert_eq!(Template::parse(&name), Some(t));
            let body = t.body();
            assert_eq!(body["message"], t.message());
            assert_eq!(body["header"]["version"], "0.2");
            assert!(body["header"]["app_handle"].is_null());
        }
        assert_eq!(Template::parse("HeaderTestMessage"), Some(Template::Header));
        assert_eq!(
            Template::parse("LINKACCOUNTTestMessage"),
            Some(Template::LinkAccount)
        );
        for bad in [
            "header",
            "TestMessage",
            "transferTestMessage",
            "headerTestMessageX",
        ] {
            assert_eq!(Template::parse(bad), None, "{bad}");
        }
    }
}
