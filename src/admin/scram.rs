//! SCRAM credentials of users (KIP-554): describe, set, delete. The
//! password never leaves the client: it is salted and hashed here.

use std::collections::BTreeMap;

use bytes::Bytes;

use super::Admin;
use super::call::{Route, check, check_top, outcomes};
use crate::error::{Error, Result};
use crate::protocol::messages::alter_user_scram_credentials_request::{
    ScramCredentialDeletion, ScramCredentialUpsertion,
};
use crate::protocol::messages::describe_user_scram_credentials_request::UserName;
use crate::protocol::messages::{
    AlterUserScramCredentialsRequest, ApiKey, DescribeUserScramCredentialsRequest,
};

/// A SCRAM mechanism.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ScramMechanism {
    /// SCRAM-SHA-256.
    Sha256,
    /// SCRAM-SHA-512.
    Sha512,
}

impl ScramMechanism {
    fn code(self) -> i8 {
        match self {
            ScramMechanism::Sha256 => 1,
            ScramMechanism::Sha512 => 2,
        }
    }

    fn from_code(code: i8) -> Option<ScramMechanism> {
        match code {
            1 => Some(ScramMechanism::Sha256),
            2 => Some(ScramMechanism::Sha512),
            _ => None,
        }
    }

    /// `SCRAM-SHA-256` or `SCRAM-SHA-512`.
    pub fn as_str(self) -> &'static str {
        match self {
            ScramMechanism::Sha256 => "SCRAM-SHA-256",
            ScramMechanism::Sha512 => "SCRAM-SHA-512",
        }
    }
}

/// One credential a user has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScramCredentialInfo {
    /// Its mechanism.
    pub mechanism: ScramMechanism,
    /// Its PBKDF2 iterations.
    pub iterations: i32,
}

/// A credential to set: `user` logs in with `password` over `mechanism`.
///
/// ```
/// use klamm::admin::{ScramMechanism, ScramUpsertion};
/// let u = ScramUpsertion::new("alice", ScramMechanism::Sha512, "alice-secret");
/// assert_eq!(u.iterations, 8192);
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct ScramUpsertion {
    /// The user.
    pub user: String,
    /// The mechanism.
    pub mechanism: ScramMechanism,
    /// PBKDF2 iterations (Kafka takes 4096 to 16384; Java's tools
    /// default to 4096, this to 8192).
    pub iterations: i32,
    /// The password (not shown by `Debug`).
    pub password: String,
}

impl ScramUpsertion {
    /// A credential with 8192 iterations.
    pub fn new(user: &str, mechanism: ScramMechanism, password: &str) -> ScramUpsertion {
        ScramUpsertion {
            user: user.to_string(),
            mechanism,
            iterations: 8192,
            password: password.to_string(),
        }
    }
}

impl std::fmt::Debug for ScramUpsertion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScramUpsertion")
            .field("user", &self.user)
            .field("mechanism", &self.mechanism)
            .field("iterations", &self.iterations)
            .field("password", &"<redacted>")
            .finish()
    }
}

impl Admin {
    /// The SCRAM credentials of the named users, or (with `None`) of every
    /// user that has one; each user's outcome on its own
    /// (RESOURCE_NOT_FOUND for a user without credentials).
    ///
    /// ```no_run
    /// # async fn run(admin: klamm::admin::Admin) -> klamm::Result<()> {
    /// for (user, creds) in admin.describe_user_scram_credentials(None).await? {
    ///     for c in creds? {
    ///         println!("{user}: {} with {} iterations", c.mechanism.as_str(), c.iterations);
    ///     }
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn describe_user_scram_credentials(
        &self,
        users: Option<&[&str]>,
    ) -> Result<BTreeMap<String, Result<Vec<ScramCredentialInfo>>>> {
        let users: Option<Vec<UserName>> = users.map(|u| {
            u.iter()
                .map(|n| UserName {
                    name: n.to_string(),
                    ..Default::default()
                })
                .collect()
        });
        self.single(ApiKey::DescribeUserScramCredentials, Route::Any, |conn| {
            let req = DescribeUserScramCredentialsRequest {
                users: users.clone(),
                ..Default::default()
            };
            async move {
                let resp = conn.send(&req).await?;
                check_top(
                    &conn,
                    ApiKey::DescribeUserScramCredentials,
                    resp.error_code,
                    resp.error_message.as_deref(),
                )?;
                Ok(resp
                    .results
                    .into_iter()
                    .map(|r| {
                        let outcome = check(
                            ApiKey::DescribeUserScramCredentials,
                            r.error_code,
                            format!("user '{}'", r.user),
                            r.error_message.as_deref(),
                        )
                        .map(|()| {
                            r.credential_infos
                                .into_iter()
                                .filter_map(|c| {
                                    Some(ScramCredentialInfo {
                                        mechanism: ScramMechanism::from_code(c.mechanism)?,
                                        iterations: c.iterations,
                                    })
                                })
                                .collect()
                        });
                        (r.user, outcome)
                    })
                    .collect())
            }
        })
        .await
    }

    /// Sets (`upsertions`) and removes (`deletions`: user and mechanism)
    /// SCRAM credentials; each user's outcome on its own. The password is
    /// salted with 32 random bytes and hashed here.
    ///
    /// ```no_run
    /// use klamm::admin::{ScramMechanism, ScramUpsertion};
    /// # async fn run(admin: klamm::admin::Admin) -> klamm::Result<()> {
    /// let alice = ScramUpsertion::new("alice", ScramMechanism::Sha512, "alice-secret");
    /// let changed = admin
    ///     .alter_user_scram_credentials(&[alice], &[("bob", ScramMechanism::Sha256)])
    ///     .await;
    /// for (user, outcome) in changed {
    ///     println!("{user}: {:?}", outcome.map_err(|e| e.to_string()));
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn alter_user_scram_credentials(
        &self,
        upsertions: &[ScramUpsertion],
        deletions: &[(&str, ScramMechanism)],
    ) -> BTreeMap<String, Result<()>> {
        let mut prepared: Vec<ScramCredentialUpsertion> = Vec::new();
        let mut refused: BTreeMap<String, Result<()>> = BTreeMap::new();
        for u in upsertions {
            let mut salt = [0u8; 32];
            match getrandom::fill(&mut salt) {
                Ok(()) if u.iterations > 0 => prepared.push(ScramCredentialUpsertion {
                    name: u.user.clone(),
                    mechanism: u.mechanism.code(),
                    iterations: u.iterations,
                    salted_password: Bytes::from(crate::net::sasl::scram_salted_password(
                        u.mechanism == ScramMechanism::Sha512,
                        &u.password,
                        &salt,
                        u.iterations as u32,
                    )),
                    salt: Bytes::copy_from_slice(&salt),
                    ..Default::default()
                }),
                Ok(()) => {
                    refused.insert(
                        u.user.clone(),
                        Err(Error::config("iterations", "must be positive")),
                    );
                }
                Err(e) => {
                    refused.insert(
                        u.user.clone(),
                        Err(Error::State {
                            reason: format!("no random salt from the OS: {e}"),
                        }),
                    );
                }
            }
        }
        let deletions: Vec<ScramCredentialDeletion> = deletions
            .iter()
            .map(|(user, m)| ScramCredentialDeletion {
                name: user.to_string(),
                mechanism: m.code(),
                ..Default::default()
            })
            .collect();
        let users = prepared
            .iter()
            .map(|u| u.name.clone())
            .chain(deletions.iter().map(|d| d.name.clone()))
            .filter(|u| !refused.contains_key(u));
        let mut outcomes = self
            .per_item(
                ApiKey::AlterUserScramCredentials,
                users.collect::<Vec<_>>(),
                |_| Route::Any,
                |conn, users| {
                    let req = AlterUserScramCredentialsRequest {
                        upsertions: prepared
                            .iter()
                            .filter(|u| users.contains(&u.name))
                            .cloned()
                            .collect(),
                        deletions: deletions
                            .iter()
                            .filter(|d| users.contains(&d.name))
                            .cloned()
                            .collect(),
                        ..Default::default()
                    };
                    async move {
                        let resp = conn.send(&req).await?;
                        Ok(outcomes(
                            ApiKey::AlterUserScramCredentials,
                            resp.results.into_iter().map(|r| {
                                let label = format!("user '{}'", r.user);
                                (r.user, label, r.error_code, r.error_message)
                            }),
                        ))
                    }
                },
            )
            .await;
        outcomes.extend(refused);
        outcomes
    }
}
