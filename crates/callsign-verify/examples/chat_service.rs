//! A backend service that accepts callsign tokens: `GET /me` answers the caller's user id, for a
//! token with the `chat` scope that the callsign server has not revoked.
//!
//! ```sh
//! callsign serve &                              # a token service on the default data dir
//! CALLSIGN_CONNECTION_STRING="$(callsign connection-string)" \
//!   cargo run -p callsign-verify --example chat_service
//! curl -H "Authorization: Bearer <a token with the chat scope>" http://127.0.0.1:3000/me
//! ```

use axum::{middleware, routing::get, Router};
use callsign_common::ConnectionString;
use callsign_verify::http::{require_token, RequireToken, Verified};
use callsign_verify::{Scope, TokenVerifier, VerifierOptions};
use std::sync::Arc;

async fn me(Verified(token): Verified) -> String {
    format!("{}\n", token.user.id())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let connection_string: ConnectionString =
        std::env::var("CALLSIGN_CONNECTION_STRING")?.parse()?;
    let verifier = TokenVerifier::from_endpoint(
        connection_string.endpoint().as_str(),
        VerifierOptions::default(),
    )?
    .follow_revocations(connection_string.access_key().clone())?;
    verifier.synchronised().await;
    let guard = RequireToken::new(Arc::new(verifier)).with_scope(Scope::Chat);
    let app = Router::new()
        .route("/me", get(me))
        .layer(middleware::from_fn_with_state(guard, require_token));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    println!("listening on http://{}/me", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
