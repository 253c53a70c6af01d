//! EIP-712 typed structured data (`eth_signTypedData_v4`): validation of the
//! JSON, and its signing hash (alloy's `alloy-dyn-abi`).

use std::fmt;

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::{json, Value};

use super::parse::{parse_address, parse_u256};
use super::payload::{invalid, shape, PayloadError};
use super::Address;

/// The domain fields EIP-712 defines, in the order its `EIP712Domain` type
/// lists them, with their types.
const DOMAIN_FIELDS: [(&str, &str); 5] = [
    ("name", "string"),
    ("version", "string"),
    ("chainId", "uint256"),
    ("verifyingContract", "address"),
    ("salt", "bytes32"),
];

const TYPED_DATA_FIELDS: [&str; 4] = ["types", "primaryType", "domain", "message"];

/// Validated EIP-712 typed data: the JSON (with `domain.chainId` normalised
/// to a JSON number), alloy's parsed form, and the signing hash computed from
/// them when the payload was built.
#[derive(Clone)]
pub struct TypedDataPayload {
    json: Value,
    parsed: alloy_dyn_abi::TypedData,
    digest: [u8; 32],
}

impl TypedDataPayload {
    /// Validates `eth_signTypedData_v4` JSON. The domain is required, must
    /// name at least one field, and `types.EIP712Domain` must list exactly the
    /// fields the domain has, in EIP-712's order (so that every implementation
    /// — those that read `types.EIP712Domain` and those that derive it from the
    /// domain — computes the same hash).
    pub fn from_json(value: Value) -> Result<Self, PayloadError> {
        let Value::Object(mut obj) = value else {
            return Err(shape("typedData must be a JSON object"));
        };
        if let Some(k) = obj
            .keys()
            .find(|k| !TYPED_DATA_FIELDS.contains(&k.as_str()))
        {
            return Err(shape(format!(
                "typedData: unknown field `{k}`, expected one of `types`, `primaryType`, `domain`, `message`"
            )));
        }

        let domain_fields = check_domain(obj.get_mut("domain"))?;

        let types = match obj.get("types") {
            None => return Err(shape("typedData: missing field `types`")),
            Some(Value::Object(t)) => t,
            Some(_) => return Err(shape("typedData.types must be a JSON object")),
        };
        let expected_domain_type: Vec<Value> = DOMAIN_FIELDS
            .iter()
            .filter(|(name, _)| domain_fields.contains(name))
            .map(|(name, ty)| json!({"name": name, "type": ty}))
            .collect();
        if types.get("EIP712Domain") != Some(&Value::Array(expected_domain_type)) {
            return Err(invalid(
                "typedData.types.EIP712Domain must list exactly the fields present in the domain, \
                 in the order name, version, chainId, verifyingContract, salt, with types \
                 string, string, uint256, address, bytes32",
            ));
        }

        let primary_type = match obj.get("primaryType") {
            None => return Err(shape("typedData: missing field `primaryType`")),
            Some(Value::String(p)) => p,
            Some(_) => return Err(shape("typedData.primaryType must be a string")),
        };
        if primary_type == "EIP712Domain" {
            return Err(invalid(
                "typedData.primaryType must not be EIP712Domain: sign a message, not the bare domain",
            ));
        }
        if !types.contains_key(primary_type) {
            return Err(invalid(format!(
                "typedData.primaryType `{primary_type}` is not defined in typedData.types"
            )));
        }

        match obj.get("message") {
            None => return Err(shape("typedData: missing field `message`")),
            Some(Value::Object(_)) => {}
            Some(_) => return Err(shape("typedData.message must be a JSON object")),
        }

        if let (Some(Value::Object(types)), Some(message)) = (obj.get("types"), obj.get("message"))
        {
            check_fields(types, primary_type, message, "typedData.message", 0)?;
        }

        let json = Value::Object(obj);
        let parsed: alloy_dyn_abi::TypedData = serde_json::from_value(json.clone())
            .map_err(|e| invalid(format!("invalid typed data: {e}")))?;
        let digest = parsed
            .eip712_signing_hash()
            .map_err(|e| invalid(format!("invalid typed data: {e}")))?;
        Ok(Self {
            json,
            parsed,
            digest: digest.0,
        })
    }

    /// The validated JSON, the form that is serialized.
    pub fn json(&self) -> &Value {
        &self.json
    }

    /// The EIP-712 signing hash.
    pub fn digest(&self) -> [u8; 32] {
        self.digest
    }

    pub fn primary_type(&self) -> &str {
        &self.parsed.primary_type
    }

    pub fn domain_name(&self) -> Option<&str> {
        self.parsed.domain.name.as_deref()
    }

    pub fn chain_id(&self) -> Option<u64> {
        self.parsed.domain.chain_id.map(|c| c.to::<u64>())
    }

    pub fn verifying_contract(&self) -> Option<Address> {
        self.parsed
            .domain
            .verifying_contract
            .map(|a| Address::from_bytes(a.0 .0))
    }
}

/// Checks the domain object in place (normalising `chainId` to a JSON number)
/// and returns the names of the fields it has.
/// Walks `value` as type `ty`, so that a missing or mistyped field is named
/// by its path (`typedData.message.to[1].wallet`) before alloy, whose errors
/// name only the types, encodes the whole message.
fn check_fields(
    types: &serde_json::Map<String, Value>,
    ty: &str,
    value: &Value,
    path: &str,
    depth: usize,
) -> Result<(), PayloadError> {
    // Deeper than any real message; alloy refuses what is left.
    if depth > 64 {
        return Ok(());
    }
    if let Some(inner) = ty
        .strip_suffix(']')
        .and_then(|t| t.rfind('[').map(|i| &t[..i]))
    {
        let Value::Array(items) = value else {
            return Err(invalid(format!("{path} must be an array ({ty})")));
        };
        for (i, item) in items.iter().enumerate() {
            check_fields(types, inner, item, &format!("{path}[{i}]"), depth + 1)?;
        }
        return Ok(());
    }
    if let Some(Value::Array(fields)) = types.get(ty) {
        let Value::Object(members) = value else {
            return Err(invalid(format!("{path} must be an object (struct {ty})")));
        };
        for field in fields {
            let (Some(name), Some(field_ty)) = (
                field.get("name").and_then(Value::as_str),
                field.get("type").and_then(Value::as_str),
            ) else {
                // A malformed declaration: alloy names it.
                continue;
            };
            let Some(member) = members.get(name) else {
                return Err(invalid(format!(
                    "{path}.{name} is missing: {ty} declares `{name}` of type `{field_ty}`"
                )));
            };
            check_fields(
                types,
                field_ty,
                member,
                &format!("{path}.{name}"),
                depth + 1,
            )?;
        }
        return Ok(());
    }
    // A value type: a type that does not parse is alloy's to report.
    if let Ok(sol) = alloy_dyn_abi::DynSolType::parse(ty) {
        sol.coerce_json(value)
            .map_err(|e| invalid(format!("{path} is not a valid `{ty}`: {e}")))?;
    }
    Ok(())
}

fn check_domain(domain: Option<&mut Value>) -> Result<Vec<&'static str>, PayloadError> {
    let domain = match domain {
        None | Some(Value::Null) => {
            return Err(invalid(
                "typedData.domain is required: a signature without a domain could be replayed in any application",
            ))
        }
        Some(Value::Object(d)) => d,
        Some(_) => return Err(shape("typedData.domain must be a JSON object")),
    };
    if domain.is_empty() {
        return Err(invalid(
            "typedData.domain must not be empty: give at least one of name, version, chainId, verifyingContract, salt",
        ));
    }
    let mut present = Vec::with_capacity(domain.len());
    for (key, v) in domain.iter_mut() {
        let Some(&(name, _)) = DOMAIN_FIELDS.iter().find(|(n, _)| n == key) else {
            return Err(shape(format!(
                "typedData.domain: unknown field `{key}`, expected one of `name`, `version`, `chainId`, `verifyingContract`, `salt`"
            )));
        };
        present.push(name);
        match name {
            "name" | "version" => {
                if !v.is_string() {
                    return Err(shape(format!("typedData.domain.{name} must be a string")));
                }
            }
            "chainId" => {
                let id = chain_id_of(v).ok_or_else(|| {
                    invalid(
                        "typedData.domain.chainId must be a positive integer that fits in 64 bits",
                    )
                })?;
                *v = Value::from(id);
            }
            "verifyingContract" => {
                let Value::String(s) = v else {
                    return Err(shape("typedData.domain.verifyingContract must be a string"));
                };
                parse_address("typedData.domain.verifyingContract", s)?;
            }
            _ => {
                let Value::String(s) = v else {
                    return Err(shape("typedData.domain.salt must be a string"));
                };
                let ok = s.len() == 66
                    && s.starts_with("0x")
                    && s[2..].bytes().all(|b| b.is_ascii_hexdigit());
                if !ok {
                    return Err(invalid(
                        "typedData.domain.salt must be 0x followed by 64 hex digits",
                    ));
                }
            }
        }
    }
    Ok(present)
}

/// A positive u64 given as a JSON integer or a decimal or 0x-hex string.
fn chain_id_of(v: &Value) -> Option<u64> {
    let id = match v {
        Value::Number(n) => n.as_u64()?,
        Value::String(s) => parse_u256(s).ok()?.try_into().ok()?,
        _ => return None,
    };
    (id > 0).then_some(id)
}

impl PartialEq for TypedDataPayload {
    fn eq(&self, other: &Self) -> bool {
        self.json == other.json
    }
}

impl Eq for TypedDataPayload {}

impl fmt::Debug for TypedDataPayload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TypedDataPayload")
            .field("primary_type", &self.primary_type())
            .field("digest", &format_args!("0x{}", hex::encode(self.digest)))
            .finish()
    }
}

impl Serialize for TypedDataPayload {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.json.serialize(s)
    }
}

impl<'de> Deserialize<'de> for TypedDataPayload {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        Self::from_json(v).map_err(de::Error::custom)
    }
}
