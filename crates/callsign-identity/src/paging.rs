//! The lists of the API as azure_core [`Pager`]s: a page is read when the pager is polled, and
//! its `nextLink` followed on this client's endpoint only (the requests are signed for it).

use crate::client::CommunicationIdentityClient;
use azure_core::error::ErrorKind;
use azure_core::http::pager::{Page, PagerContinuation, PagerOptions, PagerResult, PagerState};
use azure_core::http::{Method, Pager, Url};
use serde::de::DeserializeOwned;

/// A page of a list, which may say where the next one is.
pub(crate) trait LinkedPage: Page + DeserializeOwned + Send + 'static {
    /// The next page's link, while more may follow.
    fn next_link(&self) -> Option<&str>;
}

/// How a list's URLs are made: with the api-version (ACS routes) or as they are (callsign's own
/// routes, which take none).
#[derive(Clone, Copy)]
pub(crate) enum Links {
    /// Add the client's api-version when a link lacks one.
    WithApiVersion,
    /// Follow links as they are.
    AsIs,
}

impl CommunicationIdentityClient {
    /// A pager from `first`, resuming at `options.continuation` when given.
    pub(crate) fn pager<P: LinkedPage>(
        &self,
        first: Url,
        links: Links,
        options: PagerOptions<'_>,
    ) -> Pager<P> {
        let options = PagerOptions {
            context: options.context.into_owned(),
            continuation: options.continuation,
        };
        let client = self.clone();
        Pager::new(
            move |state: PagerState, options: PagerOptions<'static>| {
                let (client, first) = (client.clone(), first.clone());
                Box::pin(async move {
                    let url = match state {
                        PagerState::Initial => first,
                        PagerState::More(next) => client.link(next.as_ref(), links)?,
                    };
                    client.read_page(url, links, options).await
                })
            },
            Some(options),
        )
    }

    /// Reads the page at `url` and says where the next one is.
    async fn read_page<P: LinkedPage>(
        &self,
        url: Url,
        links: Links,
        options: PagerOptions<'static>,
    ) -> azure_core::Result<PagerResult<azure_core::http::Response<P>>> {
        let response = self
            .send_raw(url.clone(), Method::Get, None, &options.context)
            .await?;
        let page: P = response.body().json()?;
        let next = page
            .next_link()
            .filter(|link| !link.is_empty())
            .map(|link| self.link(link, links))
            .transpose()?;
        let response = response.into();
        let Some(next) = next else {
            return Ok(PagerResult::Done { response });
        };
        if next == url {
            return Err(azure_core::Error::with_message(
                ErrorKind::DataConversion,
                "the service answered a nextLink to the same page",
            ));
        }
        Ok(PagerResult::More {
            response,
            continuation: PagerContinuation::Link(next),
        })
    }

    /// A `nextLink` (or a continuation given to resume), on this client's endpoint only.
    fn link(&self, link: &str, links: Links) -> azure_core::Result<Url> {
        match links {
            Links::WithApiVersion => self.on_endpoint(link),
            Links::AsIs => self.on_endpoint_as_is(link),
        }
        .map_err(|e| azure_core::Error::with_message(ErrorKind::DataConversion, e.to_string()))
    }
}

/// `Page` for a page type whose items are its `value`: the signature the `async_trait`
/// `into_items` stands for.
macro_rules! value_page {
    ($page:ty, $item:ty) => {
        impl azure_core::http::pager::Page for $page {
            type Item = $item;
            type IntoIter = std::vec::IntoIter<$item>;

            fn into_items<'page>(
                self,
            ) -> std::pin::Pin<
                Box<
                    dyn std::future::Future<Output = azure_core::Result<Self::IntoIter>>
                        + Send
                        + 'page,
                >,
            >
            where
                Self: 'page,
            {
                Box::pin(std::future::ready(Ok(self.value.into_iter())))
            }
        }

        impl $crate::paging::LinkedPage for $page {
            fn next_link(&self) -> Option<&str> {
                self.next_link.as_deref()
            }
        }
    };
}
pub(crate) use value_page;
