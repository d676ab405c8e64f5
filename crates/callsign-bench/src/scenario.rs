//! The scenarios: which requests each worker sends, pre-signed.

use crate::api::{self, Expect};
use crate::conn::{Conn, Target};
use crate::load::Step;
use crate::presign::{Presigned, Signer, Template};
use anyhow::Result;
use chrono::Utc;
use clap::ValueEnum;
use serde::{Deserialize, Serialize};

/// One kind of load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
pub enum Scenario {
    /// `GET /healthz`: the HTTP bound.
    Healthz,
    /// `POST /identities`.
    CreateUser,
    /// Issue a token to one of the pre-created users.
    IssueToken,
    /// Issue tokens open-loop at half the `issue-token` rate.
    IssueTokenHalfLoad,
    /// Create a user with a token.
    CreateUserAndToken,
    /// Revoke one of the pre-created users' tokens.
    Revoke,
    /// 80 % issue token, 15 % create user, 5 % revoke.
    Mixed,
}

impl Scenario {
    /// Every scenario, in the order they run by default.
    pub fn all() -> Vec<Scenario> {
        Scenario::value_variants().to_vec()
    }

    /// The name in the JSON lines (`issue_token`).
    pub fn name(self) -> String {
        self.to_possible_value()
            .expect("no skipped variants")
            .get_name()
            .replace('-', "_")
    }

    /// Whether every request of the scenario signs a token.
    pub fn signs_tokens(self) -> bool {
        matches!(
            self,
            Scenario::IssueToken | Scenario::IssueTokenHalfLoad | Scenario::CreateUserAndToken
        )
    }

    /// The distinct requests of the scenario, for `users`: per-user requests are laid out user
    /// by user, issue tokens first (see [`Worker::pick`]).
    pub fn templates(self, users: &[String]) -> Vec<Template> {
        match self {
            Scenario::Healthz => vec![api::healthz()],
            Scenario::CreateUser => vec![api::create_user()],
            Scenario::CreateUserAndToken => vec![api::create_user_and_token()],
            Scenario::IssueToken | Scenario::IssueTokenHalfLoad => {
                users.iter().map(|u| api::issue_token(u)).collect()
            }
            Scenario::Revoke => users.iter().map(|u| api::revoke(u)).collect(),
            Scenario::Mixed => {
                let issue = users.iter().map(|u| api::issue_token(u));
                let revoke = users.iter().map(|u| api::revoke(u));
                issue.chain(revoke).chain([api::create_user()]).collect()
            }
        }
    }
}

/// One connection sending one scenario's pre-signed requests.
pub struct Worker {
    scenario: Scenario,
    index: usize,
    users: usize,
    conn: Conn,
    requests: Presigned,
}

impl Worker {
    /// Connects worker `index` of a scenario; each worker signs its own copies, so that no
    /// lock is shared between them.
    pub async fn connect(
        target: &Target,
        signer: &Signer,
        scenario: Scenario,
        users: &[String],
        index: usize,
    ) -> Result<Self> {
        Ok(Self {
            scenario,
            index,
            users: users.len().max(1),
            conn: target.connect().await?,
            requests: Presigned::new(signer.clone(), scenario.templates(users)),
        })
    }
}

/// Which of `scenario`'s requests (laid out as [`Scenario::templates`] does for `users` users)
/// request `seq` of worker `index` is, and what its answer must hold.
fn pick(scenario: Scenario, index: usize, users: usize, seq: u64) -> (usize, Expect) {
    let user = (index * 31 + seq as usize) % users;
    match scenario {
        Scenario::Healthz | Scenario::CreateUser | Scenario::Revoke => (user, Expect::Success),
        Scenario::IssueToken | Scenario::IssueTokenHalfLoad => (user, Expect::Token),
        Scenario::CreateUserAndToken => (0, Expect::Token),
        Scenario::Mixed => match (index as u64 * 7 + seq) % 20 {
            0..=15 => (user, Expect::Token),
            16..=18 => (2 * users, Expect::Success),
            _ => (users + user, Expect::Success),
        },
    }
}

impl Step for Worker {
    async fn step(&mut self, seq: u64) -> Result<()> {
        let (index, expect) = pick(self.scenario, self.index, self.users, seq);
        let request = self.requests.get(index, Utc::now());
        expect.check(self.conn.send(request).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mixed_requests_are_laid_out_issue_revoke_create() {
        let users = vec!["8:acs:a".to_owned(), "8:acs:b".to_owned()];
        let templates = Scenario::Mixed.templates(&users);
        assert_eq!(templates.len(), 5);
        assert!(templates[1].path.ends_with("8:acs:b/:issueAccessToken"));
        assert!(templates[2].path.ends_with("8:acs:a/:revokeAccessTokens"));
        assert_eq!(templates[4], api::create_user());
        assert_eq!(Scenario::IssueTokenHalfLoad.name(), "issue_token_half_load");
    }

    #[test]
    fn mixed_is_80_percent_issue_15_create_5_revoke() {
        let users = 4;
        let (mut issue, mut create, mut revoke) = (0, 0, 0);
        for seq in 0..200 {
            match pick(Scenario::Mixed, 3, users, seq) {
                (i, Expect::Token) if i < users => issue += 1,
                (i, Expect::Success) if i == 2 * users => create += 1,
                (i, Expect::Success) if (users..2 * users).contains(&i) => revoke += 1,
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!((issue, create, revoke), (160, 30, 10));
    }

    #[test]
    fn workers_start_at_different_users() {
        let first = |index| pick(Scenario::IssueToken, index, 256, 0).0;
        assert_ne!(first(0), first(1));
        assert_eq!(pick(Scenario::Healthz, 5, 1, 9), (0, Expect::Success));
    }
}
