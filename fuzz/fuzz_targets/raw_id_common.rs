//! Raw ids on the client side: `CommunicationIdentifier::from_raw_id` (callsign-common) never
//! fails, keeps the raw id exactly, re-parses to the same identifier, and survives the REST wire
//! model (JSON) unchanged.

#![no_main]
#![forbid(unsafe_code)]

use callsign_common::CommunicationIdentifier;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let raw = String::from_utf8_lossy(data);
    let id = CommunicationIdentifier::from_raw_id(&raw);
    assert_eq!(id.raw_id(), raw, "the raw id must be kept exactly");
    assert_eq!(id.to_string(), raw);

    let again = CommunicationIdentifier::from_raw_id(id.raw_id());
    assert_eq!(again, id);
    assert_eq!(again.kind(), id.kind());

    let json = serde_json::to_value(&id).expect("identifiers serialize");
    assert_eq!(json["rawId"], raw.as_ref());
    let back: CommunicationIdentifier =
        serde_json::from_value(json.clone()).expect("a serialized identifier deserializes");
    assert_eq!(back, id);
    assert_eq!(back.kind(), id.kind());
    assert_eq!(
        serde_json::to_value(&back).unwrap(),
        json,
        "the wire model is stable"
    );
});
