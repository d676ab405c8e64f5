// CALLSIGN_CONNECTION_STRING="endpoint=http://127.0.0.1:8080/;accesskey=..." \
//   cargo run -p callsign-identity --example quickstart
use callsign_identity::{
    CommunicationIdentityClient, CommunicationIdentityClientGetTokenOptions, TokenExpiry,
    TokenScope,
};
use std::time::Duration;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let connection_string = std::env::var("CALLSIGN_CONNECTION_STRING")?;
    let client = CommunicationIdentityClient::from_connection_string(&connection_string, None)?;
    let user = client.create_user(None).await?;
    let options = CommunicationIdentityClientGetTokenOptions {
        expires_in: Some(TokenExpiry::new(Duration::from_secs(90 * 60))?),
        ..Default::default()
    };
    let token = client
        .get_token(&user, &[TokenScope::Chat, TokenScope::Voip], Some(options))
        .await?;
    println!("{} {}", user.id(), token.expires_on);
    client.revoke_tokens(&user, None).await?;
    client.delete_user(&user, None).await?;
    Ok(())
}
