//! The OpenAPI 3.1 description of the HTTP API, generated from the endpoint definitions of
//! [`super::endpoints`] and the `utoipa::ToSchema` derives of the wire types. The server
//! serves it at `GET /api/openapi.json`; `docs/openapi.json` is the same document, checked
//! in (a test fails when they differ).
//!
//! Each error response restricts `code` to the [`ErrorCode`]s the endpoint can answer with
//! that status, so a tool checking responses against the description (schemathesis) also
//! catches a code the definition does not list.

use std::collections::BTreeMap;

use utoipa::openapi::path::{
    HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn, PathsBuilder,
};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::schema::{
    AllOfBuilder, KnownFormat, ObjectBuilder, Schema, SchemaFormat, Type,
};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{
    ComponentsBuilder, ContentBuilder, InfoBuilder, OpenApi, OpenApiBuilder, Ref, RefOr, Required,
    ResponseBuilder,
};
use utoipa::ToSchema;

use super::endpoints::{self, Access, BodyKind, EndpointInfo, Method, ParamKind};
use super::{ErrorBody, ErrorCode};

pub use super::SESSION_COOKIE;

/// The security scheme of endpoints that need a session.
const SESSION_SCHEME: &str = "session";

/// An endpoint and the schemas of its JSON bodies.
pub(crate) struct Bodies {
    /// The endpoint.
    pub info: EndpointInfo,
    /// Its JSON request body, if it takes one.
    pub request: Option<RefOr<Schema>>,
    /// Its JSON success body, if it answers with one.
    pub response: Option<RefOr<Schema>>,
}

/// A reference to `T`'s named schema, adding it and the schemas it uses to `components`.
pub(crate) fn named<T: ToSchema>(components: &mut Vec<(String, RefOr<Schema>)>) -> RefOr<Schema> {
    components.push((T::name().into_owned(), T::schema()));
    T::schemas(components);
    RefOr::Ref(Ref::from_schema_name(T::name()))
}

/// The description of every endpoint.
pub fn document() -> OpenApi {
    let mut components = Vec::new();
    let error_body = named::<ErrorBody>(&mut components);
    let mut paths = PathsBuilder::new().build();
    let mut error_responses = BTreeMap::new();
    for bodies in endpoints::body_schemas(&mut components) {
        let info = bodies.info;
        let method = match info.method {
            Method::Get => HttpMethod::Get,
            Method::Post => HttpMethod::Post,
            Method::Put => HttpMethod::Put,
            Method::Delete => HttpMethod::Delete,
        };
        let mut operation = OperationBuilder::new()
            .operation_id(Some(info.id))
            .summary(Some(info.summary))
            .tag(tag(info.path))
            .parameters(Some(parameters(&info)));
        if let Some(body) = request_body(&info, bodies.request.clone()) {
            operation = operation.request_body(Some(body));
        }
        if info.access == Access::Session {
            operation = operation.security(SecurityRequirement::new(
                SESSION_SCHEME,
                Vec::<String>::new(),
            ));
        }
        for &status in info.success {
            operation = operation.response(status.to_string(), success(&info, status, &bodies));
        }
        for (status, codes) in errors_by_status(&info) {
            let names: Vec<&str> = codes.iter().map(|code| code.as_str()).collect();
            let name = format!("Error.{}", names.join("."));
            operation = operation.response(
                status.to_string(),
                RefOr::Ref(Ref::from_response_name(name.clone())),
            );
            error_responses
                .entry(name)
                .or_insert_with(|| error(&error_body, &names));
        }
        paths.add_path_operation(info.path, vec![method], operation);
    }
    components.sort_by(|a, b| a.0.cmp(&b.0));
    components.dedup_by(|a, b| a.0 == b.0);
    let components = ComponentsBuilder::new()
        .schemas_from_iter(components)
        .responses_from_iter(error_responses)
        .security_scheme(
            SESSION_SCHEME,
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                SESSION_COOKIE,
                "the session token the server set at registration or login (HttpOnly, \
                 SameSite=Strict)",
            ))),
        )
        .build();
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("End-to-end encrypted chat")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(
                    "The chat server's HTTP API. The server stores and relays opaque, \
                     end-to-end encrypted blobs; what they contain, and the rules this \
                     description cannot say, are in docs/PROTOCOL.md. Errors are an \
                     ErrorBody whose `code` is one of those listed for the status.",
                ))
                .build(),
        )
        .paths(paths)
        .components(Some(components))
        .build()
}

/// The document as pretty JSON with a final newline, as checked in at `docs/openapi.json`.
///
/// # Panics
/// Never: the document holds only strings, numbers and maps.
#[allow(clippy::expect_used)]
pub fn document_json() -> String {
    let mut json = serde_json::to_string_pretty(&document()).expect("the document serializes");
    json.push('\n');
    json
}

/// The group of an endpoint: the first path segment after `/api` (`rooms`, `login`, ...).
fn tag(path: &str) -> String {
    let rest = path
        .strip_prefix("/api/")
        .unwrap_or(path.trim_start_matches('/'));
    rest.split(['/', '.']).next().unwrap_or(rest).to_owned()
}

fn parameters(info: &EndpointInfo) -> Vec<utoipa::openapi::path::Parameter> {
    let mut parameters = Vec::new();
    for param in info.params {
        let schema = match param.kind {
            ParamKind::RoomId => pattern(
                "a room id: 64 hex digits (lowercase as clients write them)",
                "^[0-9a-fA-F]{64}$",
            ),
            ParamKind::AttachmentId => pattern(
                "an attachment id: 32 hex digits (lowercase as clients write them)",
                "^[0-9a-fA-F]{32}$",
            ),
            ParamKind::Username => pattern(
                "a username: 3 to 32 of a-z, 0-9, '.', '_', '-', starting with a letter or digit",
                "^[a-z0-9][a-z0-9._-]{2,31}$",
            ),
            ParamKind::Opaque => ObjectBuilder::new()
                .schema_type(Type::String)
                .description(Some("an id the server listed"))
                .min_length(Some(1))
                .build(),
            ParamKind::Index => ObjectBuilder::new()
                .schema_type(Type::Integer)
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
                .minimum(Some(0))
                .maximum(Some(u32::MAX))
                .build(),
        };
        parameters.push(
            ParameterBuilder::new()
                .name(param.name)
                .parameter_in(ParameterIn::Path)
                .required(Required::True)
                .schema(Some(schema))
                .build(),
        );
    }
    for field in info.query {
        let mut schema = ObjectBuilder::new()
            .schema_type(Type::Integer)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
            .minimum(field.minimum);
        if field.unsigned_32 {
            schema = schema.maximum(Some(u32::MAX));
        }
        parameters.push(
            ParameterBuilder::new()
                .name(field.name)
                .parameter_in(ParameterIn::Query)
                .required(Required::False)
                .description(Some(field.description))
                .schema(Some(schema.build()))
                .build(),
        );
    }
    parameters
}

fn pattern(description: &str, pattern: &str) -> utoipa::openapi::schema::Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(description))
        .pattern(Some(pattern))
        .build()
}

fn octets() -> utoipa::openapi::schema::Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Binary)))
        .build()
}

fn request_body(
    info: &EndpointInfo,
    schema: Option<RefOr<Schema>>,
) -> Option<utoipa::openapi::request_body::RequestBody> {
    let (content_type, schema): (&str, RefOr<Schema>) = match (info.request_body, schema) {
        (BodyKind::Json, Some(schema)) => ("application/json", schema),
        (BodyKind::Octets, _) => ("application/octet-stream", octets().into()),
        _ => return None,
    };
    Some(
        RequestBodyBuilder::new()
            .required(Some(Required::True))
            .content(
                content_type,
                ContentBuilder::new().schema(Some(schema)).build(),
            )
            .build(),
    )
}

fn success(info: &EndpointInfo, status: u16, bodies: &Bodies) -> utoipa::openapi::Response {
    let description = match status {
        101 => "switching to the WebSocket of server events (JSON text frames of ServerEvent)",
        200 => "done",
        201 => "created",
        202 => "accepted",
        204 => "done, no body",
        206 => "the requested range (Content-Range names it)",
        _ => "success",
    };
    let content = match (info.response_body, &bodies.response) {
        (BodyKind::Json, Some(schema)) if status != 204 && status != 101 => {
            Some(("application/json", schema.clone()))
        }
        (BodyKind::Octets, _) => Some(("application/octet-stream", octets().into())),
        (BodyKind::Text, _) => Some((
            "text/plain",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .build()
                .into(),
        )),
        _ => None,
    };
    let response = ResponseBuilder::new().description(description);
    match content {
        Some((content_type, schema)) => response
            .content(
                content_type,
                ContentBuilder::new().schema(Some(schema)).build(),
            )
            .build(),
        None => response.build(),
    }
}

/// The endpoint's error codes grouped by status, ascending.
fn errors_by_status(info: &EndpointInfo) -> BTreeMap<u16, Vec<ErrorCode>> {
    let mut groups: BTreeMap<u16, Vec<ErrorCode>> = BTreeMap::new();
    for code in info.errors() {
        groups.entry(code.status()).or_default().push(code);
    }
    groups
}

/// The error response with one of `names` as its code: one component per set of codes
/// (`Error.stale_epoch.key_rotation_pending`), shared by the operations that answer it.
fn error(error_body: &RefOr<Schema>, names: &[&str]) -> utoipa::openapi::Response {
    let description = names
        .iter()
        .map(|name| format!("`{name}`"))
        .collect::<Vec<_>>()
        .join(", ");
    let restricted = ObjectBuilder::new().property(
        "code",
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(names.to_vec())),
    );
    let schema = Schema::AllOf(
        AllOfBuilder::new()
            .item(error_body.clone())
            .item(restricted)
            .build(),
    );
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new().schema(Some(schema)).build(),
        )
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_endpoint_is_described_with_its_statuses() {
        let json: serde_json::Value = serde_json::from_str(&document_json()).unwrap_or_default();
        assert_eq!(json["openapi"], "3.1.0");
        for info in endpoints::ENDPOINTS {
            let operation = &json["paths"][info.path][info.method.as_str().to_lowercase()];
            assert_eq!(operation["operationId"], info.id, "{}", info.id);
            for status in info.success {
                assert!(operation["responses"][status.to_string()].is_object());
            }
            for code in info.errors() {
                let reference = &operation["responses"][code.status().to_string()]["$ref"];
                let name = reference
                    .as_str()
                    .and_then(|r| r.strip_prefix("#/components/responses/"))
                    .unwrap_or_default();
                let response = &json["components"]["responses"][name];
                let allowed = &response["content"]["application/json"]["schema"]["allOf"][1]
                    ["properties"]["code"]["enum"];
                assert!(
                    allowed
                        .as_array()
                        .is_some_and(|codes| codes.iter().any(|c| c == code.as_str())),
                    "{} {code}",
                    info.id
                );
            }
        }
        for name in [
            "ErrorBody",
            "ErrorCode",
            "PostMessageRequest",
            "Bytes32",
            "RoomId",
        ] {
            assert!(json["components"]["schemas"][name].is_object(), "{name}");
        }
    }

    #[test]
    fn the_document_is_the_same_every_time() {
        assert_eq!(document_json(), document_json());
    }
}
