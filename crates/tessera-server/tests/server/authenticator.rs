//! A software WebAuthn authenticator for the in-process tests: it answers
//! the options the server sends as a browser with a platform authenticator
//! would (a P-256 key, attestation `none`, user verified), and can be made
//! to answer wrongly (another origin, relying party or challenge; a
//! counter that goes back; a signature of other bytes), which real
//! browsers never do. Chromium's own virtual authenticator is tested in
//! the browser tests.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use p256::ecdsa::{DerSignature, SigningKey, signature::Signer};
use serde_cbor_2::Value as Cbor;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// User present, user verified, attested credential data.
const UP: u8 = 0x01;
const UV: u8 = 0x04;
const BE: u8 = 0x08;
const BS: u8 = 0x10;
const AT: u8 = 0x40;

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn unb64(text: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(text).unwrap()
}

/// One credential on the authenticator.
pub struct Authenticator {
    key: SigningKey,
    credential_id: Vec<u8>,
    /// The user handle it was registered under (after a registration).
    pub user_handle: Vec<u8>,
    /// The next assertion's signature counter.
    pub counter: u32,
    /// The origin it puts in its client data.
    pub origin: String,
    /// The relying party id whose hash it puts in its authenticator data.
    pub rp_id: String,
    /// Whether its passkeys may be copied (backup eligible and backed up).
    pub synced: bool,
}

impl Authenticator {
    /// A new credential for the relying party `rp_id` at `origin`, with a
    /// counter that starts at 1.
    pub fn new(origin: &str, rp_id: &str) -> Self {
        Self {
            key: SigningKey::random(&mut rand::rngs::OsRng),
            credential_id: rand::random::<[u8; 16]>().to_vec(),
            user_handle: Vec::new(),
            counter: 1,
            origin: origin.into(),
            rp_id: rp_id.into(),
            synced: false,
        }
    }

    /// The credential id, base64url.
    pub fn credential_id(&self) -> String {
        b64(&self.credential_id)
    }

    fn flags(&self, extra: u8) -> u8 {
        let synced = if self.synced { BE | BS } else { 0 };
        UP | UV | synced | extra
    }

    fn client_data(&self, kind: &str, challenge: &str) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "type": kind,
            "challenge": challenge,
            "origin": self.origin,
            "crossOrigin": false,
        }))
        .unwrap()
    }

    /// The COSE form of the public key (EC2, ES256, P-256).
    fn cose_key(&self) -> Vec<u8> {
        let point = self.key.verifying_key().to_encoded_point(false);
        let mut map = BTreeMap::new();
        map.insert(Cbor::Integer(1), Cbor::Integer(2));
        map.insert(Cbor::Integer(3), Cbor::Integer(-7));
        map.insert(Cbor::Integer(-1), Cbor::Integer(1));
        map.insert(Cbor::Integer(-2), Cbor::Bytes(point.x().unwrap().to_vec()));
        map.insert(Cbor::Integer(-3), Cbor::Bytes(point.y().unwrap().to_vec()));
        serde_cbor_2::to_vec(&Cbor::Map(map)).unwrap()
    }

    /// The answer to registration options (`{"publicKey": ...}` or the
    /// `publicKey` object itself), as `PublicKeyCredential.toJSON()` gives it.
    pub fn register(&mut self, options: &Value) -> Value {
        let options = options.get("publicKey").unwrap_or(options);
        let challenge = options["challenge"].as_str().unwrap();
        self.user_handle = unb64(options["user"]["id"].as_str().unwrap());
        let client_data = self.client_data("webauthn.create", challenge);
        let mut auth_data = Sha256::digest(self.rp_id.as_bytes()).to_vec();
        auth_data.push(self.flags(AT));
        auth_data.extend_from_slice(&0u32.to_be_bytes());
        auth_data.extend_from_slice(&[0u8; 16]);
        let id_len = u16::try_from(self.credential_id.len()).unwrap();
        auth_data.extend_from_slice(&id_len.to_be_bytes());
        auth_data.extend_from_slice(&self.credential_id);
        auth_data.extend_from_slice(&self.cose_key());
        let mut attestation = BTreeMap::new();
        attestation.insert(Cbor::Text("fmt".into()), Cbor::Text("none".into()));
        attestation.insert(Cbor::Text("attStmt".into()), Cbor::Map(BTreeMap::new()));
        attestation.insert(Cbor::Text("authData".into()), Cbor::Bytes(auth_data));
        let attestation = serde_cbor_2::to_vec(&Cbor::Map(attestation)).unwrap();
        json!({
            "id": self.credential_id(),
            "rawId": self.credential_id(),
            "type": "public-key",
            "response": {
                "clientDataJSON": b64(&client_data),
                "attestationObject": b64(&attestation),
                "transports": ["internal"],
            },
            "clientExtensionResults": {},
        })
    }

    /// The answer to request options (an assertion), its counter then
    /// raised by one.
    pub fn assert(&mut self, options: &Value) -> Value {
        let options = options.get("publicKey").unwrap_or(options);
        let challenge = options["challenge"].as_str().unwrap().to_owned();
        let answer = self.assert_challenge(&challenge);
        self.counter += 1;
        answer
    }

    /// An assertion of `challenge` with the counter as it is.
    pub fn assert_challenge(&self, challenge: &str) -> Value {
        let client_data = self.client_data("webauthn.get", challenge);
        let mut auth_data = Sha256::digest(self.rp_id.as_bytes()).to_vec();
        auth_data.push(self.flags(0));
        auth_data.extend_from_slice(&self.counter.to_be_bytes());
        let mut signed = auth_data.clone();
        signed.extend_from_slice(&Sha256::digest(&client_data));
        let signature: DerSignature = self.key.sign(&signed);
        json!({
            "id": self.credential_id(),
            "rawId": self.credential_id(),
            "type": "public-key",
            "response": {
                "clientDataJSON": b64(&client_data),
                "authenticatorData": b64(&auth_data),
                "signature": b64(signature.as_bytes()),
                "userHandle": b64(&self.user_handle),
            },
            "clientExtensionResults": {},
        })
    }
}

/// `answer` with its signature replaced by one of other bytes (the same key).
pub fn with_bad_signature(answer: &Value) -> Value {
    let mut answer = answer.clone();
    let signature = answer["response"]["signature"].as_str().unwrap().to_owned();
    let mut bytes = unb64(&signature);
    let last = bytes.len() - 3;
    bytes[last] ^= 0x01;
    answer["response"]["signature"] = Value::String(b64(&bytes));
    answer
}
