//! callsign's own management routes (docs/protocol.md §7.4, §7.5 and §7.10): listing the
//! identities, resetting a development server and reading the change feed. Azure Communication Services has neither; like every
//! `/callsign/…` route they take no api-version.

use crate::client::CommunicationIdentityClient;
use crate::error::{IdentityError, Result};
use crate::models::{EventsPage, ListUsersPage};
use crate::options::{
    CommunicationIdentityClientListUsersOptions, CommunicationIdentityClientReadEventsOptions,
    CommunicationIdentityClientResetOptions,
};
use crate::paging::Links;
use azure_core::http::{Method, Pager};

/// The identity list.
const LIST_PATH: &str = "/callsign/identities";
/// The reset.
const RESET_PATH: &str = "/callsign/:reset";
/// The change feed.
const EVENTS_PATH: &str = "/callsign/events";
/// The longest a feed request may wait for an event.
const MAX_WAIT: std::time::Duration = std::time::Duration::from_secs(60);
/// The largest page a callsign server serves.
const MAX_PAGE_SIZE: u32 = 1000;

impl CommunicationIdentityClient {
    /// callsign extension: every live user of the resource, ordered by id, as an azure_core
    /// [`Pager`] that follows the server's `nextLink` page by page while it is polled (nothing is
    /// sent before). Azure Communication Services has no such operation.
    ///
    /// Items are `azure_core::Result<ListedUser>`; `IdentityError::from` turns an error into
    /// this crate's (status, code and message for a service error). A `nextLink` is followed only
    /// on this client's endpoint (the requests are signed for it): one that leads elsewhere, or
    /// back to the page it came with, fails that page and ends the pager. A continuation given in
    /// the options to resume is held to the same endpoint.
    ///
    /// ```no_run
    /// use callsign_identity::{CommunicationIdentityClient, CommunicationIdentityClientListUsersOptions};
    /// use futures::TryStreamExt;
    ///
    /// # async fn example(client: CommunicationIdentityClient) -> Result<(), Box<dyn std::error::Error>> {
    /// let options = CommunicationIdentityClientListUsersOptions { max_page_size: Some(50), ..Default::default() };
    /// let mut users = client.list_users(Some(options))?;
    /// while let Some(user) = users.try_next().await? {
    ///     println!("{} created {}", user.id, user.created_at);
    /// }
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// [`ListedUser`]: crate::ListedUser
    pub fn list_users(
        &self,
        options: Option<CommunicationIdentityClientListUsersOptions<'_>>,
    ) -> Result<Pager<ListUsersPage>> {
        let options = options.unwrap_or_default();
        let mut first = self.on_endpoint_as_is(LIST_PATH)?;
        if let Some(size) = options.max_page_size {
            if !(1..=MAX_PAGE_SIZE).contains(&size) {
                return Err(IdentityError::InvalidArgument(format!(
                    "max_page_size must be within [1, {MAX_PAGE_SIZE}], got {size}"
                )));
            }
            first
                .query_pairs_mut()
                .append_pair("maxpagesize", &size.to_string());
        }
        if let Some(custom_id) = &options.custom_id {
            if !(1..=256).contains(&custom_id.chars().count()) {
                return Err(IdentityError::InvalidArgument(
                    "custom_id must be 1 to 256 characters".into(),
                ));
            }
            first.query_pairs_mut().append_pair("customId", custom_id);
        }
        Ok(self.pager(first, Links::AsIs, options.method_options))
    }

    /// callsign extension, for development servers: deletes every identity (with its tokens),
    /// Teams extension assignment and Entra assignment; the access keys and signing keys stay.
    /// Only a server started with `--dev` or `--allow-reset` has it; any other answers 404
    /// `NotFound`. Azure Communication Services has no such operation.
    pub async fn reset(
        &self,
        options: Option<CommunicationIdentityClientResetOptions<'_>>,
    ) -> Result<()> {
        let options = options.unwrap_or_default();
        let url = self.on_endpoint_as_is(RESET_PATH)?;
        self.send_to(url, Method::Post, None, &options.method_options.context)
            .await
            .map(drop)
    }

    /// callsign extension: one page of the change feed (docs/protocol.md §7.10) — the events
    /// stored after `options.after`, in commit order, with the cursor to continue from. With
    /// `options.wait` the server holds the request until an event is stored or the wait ends
    /// (a long poll), so a loop of calls follows the feed as it happens. A cursor older than
    /// the server's retention fails with 410 `CursorExpired`.
    pub async fn read_events(
        &self,
        options: Option<CommunicationIdentityClientReadEventsOptions<'_>>,
    ) -> Result<EventsPage> {
        let options = options.unwrap_or_default();
        let mut url = self.on_endpoint_as_is(EVENTS_PATH)?;
        if let Some(after) = &options.after {
            url.query_pairs_mut().append_pair("after", after);
        }
        if let Some(size) = options.max_page_size {
            if !(1..=MAX_PAGE_SIZE).contains(&size) {
                return Err(IdentityError::InvalidArgument(format!(
                    "max_page_size must be within [1, {MAX_PAGE_SIZE}], got {size}"
                )));
            }
            url.query_pairs_mut()
                .append_pair("maxpagesize", &size.to_string());
        }
        if let Some(wait) = options.wait {
            if wait > MAX_WAIT {
                return Err(IdentityError::InvalidArgument(format!(
                    "wait must be at most {} s",
                    MAX_WAIT.as_secs()
                )));
            }
            url.query_pairs_mut()
                .append_pair("wait", &wait.as_secs().to_string());
        }
        let response = self
            .send_to(url, Method::Get, None, &options.method_options.context)
            .await?;
        response.body().json().map_err(IdentityError::Transport)
    }
}
