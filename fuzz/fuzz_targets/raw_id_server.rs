//! Raw ids on the server side: the identity id of a request path (`IdentityId::parse`, after the
//! router's percent-decoding) and resource ids (`ResourceId`). Accepted ids are canonical and
//! re-parse to themselves, errors do not depend on luck, and the client-side parser agrees that an
//! accepted id is a communication user.

#![no_main]
#![forbid(unsafe_code)]

use callsign_common::CommunicationIdentifier;
use callsign_fuzz::resource_id;
use callsign_server::domain::{IdentityId, IdentityIdError, ResourceId};
use callsign_server::http::routes::{resolve, AcsOperation, Route};
use http::Method;
use libfuzzer_sys::fuzz_target;
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};

fuzz_target!(|data: &[u8]| {
    let raw = String::from_utf8_lossy(data);
    let resource = resource_id();
    let other: ResourceId = "00000000-0000-0000-0000-000000000001".parse().unwrap();

    match IdentityId::parse(&raw, resource) {
        Ok(id) => {
            let canonical = id.as_str();
            assert_eq!(IdentityId::parse(canonical, resource), Ok(id.clone()));
            assert_eq!(canonical.len(), 79);
            assert!(canonical.starts_with(&format!("8:acs:{resource}_")));
            assert_eq!(canonical, canonical.to_ascii_lowercase());
            assert_eq!(id.skype_id(), &canonical[2..]);
            assert!(matches!(
                CommunicationIdentifier::from_raw_id(canonical),
                CommunicationIdentifier::CommunicationUser(_)
            ));
            assert_eq!(
                IdentityId::parse(&raw, other),
                Err(IdentityIdError::NotOwned)
            );
        }
        Err(IdentityIdError::Malformed) => {
            assert_eq!(
                IdentityId::parse(&raw, other),
                Err(IdentityIdError::Malformed)
            );
        }
        Err(IdentityIdError::NotOwned) => {
            // Well-formed: of another resource (which then owns it) or of another cloud.
            let owner = raw
                .strip_prefix("8:acs:")
                .and_then(|rest| rest.split_once('_'))
                .and_then(|(owner, _)| owner.parse::<ResourceId>().ok());
            if let Some(owner) = owner {
                assert!(IdentityId::parse(&raw, owner).is_ok());
            }
        }
    }

    if let Ok(parsed) = raw.parse::<ResourceId>() {
        assert_eq!(parsed.to_string().parse::<ResourceId>(), Ok(parsed));
    }

    // Any id, percent-encoded into a path, reaches the handler exactly as it was.
    if !raw.is_empty() {
        let encoded = utf8_percent_encode(&raw, NON_ALPHANUMERIC).to_string();
        let route = resolve(
            &Method::POST,
            &format!("/identities/{encoded}/:issueAccessToken"),
        );
        assert_eq!(
            route.ok(),
            Some(Route::Acs(AcsOperation::IssueToken(
                raw.clone().into_owned()
            )))
        );
    }
    // And any path resolves to a route or an error.
    let _ = resolve(&Method::GET, &format!("/identities/{raw}"));
});
