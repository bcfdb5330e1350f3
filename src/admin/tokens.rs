//! Delegation tokens (KIP-48): create, renew, expire, describe. The
//! brokers need `delegation.token.secret.key` set, and the caller must be
//! authenticated with SASL or TLS (not with a delegation token).

use std::time::Duration;

use bytes::Bytes;

use super::Admin;
use super::call::{Route, check_top};
use crate::error::{Error, Result};
use crate::protocol::messages::create_delegation_token_request::CreatableRenewers;
use crate::protocol::messages::describe_delegation_token_request::DescribeDelegationTokenOwner;
use crate::protocol::messages::{
    ApiKey, CreateDelegationTokenRequest, DescribeDelegationTokenRequest,
    ExpireDelegationTokenRequest, RenewDelegationTokenRequest,
};

/// A delegation token.
#[derive(Clone, PartialEq, Eq)]
pub struct DelegationToken {
    /// Its id (the SCRAM user name a client logs in with).
    pub token_id: String,
    /// Its HMAC (the SCRAM password, base64; not shown by `Debug`).
    pub hmac: Bytes,
    /// Its owner (`User:alice`).
    pub owner: String,
    /// Who asked for it (KIP-373: may differ from the owner).
    pub requester: String,
    /// Who may renew it besides the owner.
    pub renewers: Vec<String>,
    /// When it was issued (ms since the epoch).
    pub issued_ms: i64,
    /// When it expires unless renewed.
    pub expiry_ms: i64,
    /// When it expires at the latest.
    pub max_ms: i64,
}

impl std::fmt::Debug for DelegationToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DelegationToken")
            .field("token_id", &self.token_id)
            .field("hmac", &"<redacted>")
            .field("owner", &self.owner)
            .field("requester", &self.requester)
            .field("renewers", &self.renewers)
            .field("issued_ms", &self.issued_ms)
            .field("expiry_ms", &self.expiry_ms)
            .field("max_ms", &self.max_ms)
            .finish()
    }
}

/// `User:alice` as (type, name).
fn split_principal(p: &str) -> Result<(String, String)> {
    p.split_once(':')
        .map(|(t, n)| (t.to_string(), n.to_string()))
        .ok_or_else(|| Error::config("principal", format!("'{p}' should look like User:name")))
}

/// `type:name`; the requester is the owner when the broker names none
/// (before KIP-373).
fn principals(owner: (&str, &str), requester: (&str, &str)) -> (String, String) {
    let owner_s = format!("{}:{}", owner.0, owner.1);
    let requester_s = if requester.1.is_empty() {
        owner_s.clone()
    } else {
        format!("{}:{}", requester.0, requester.1)
    };
    (owner_s, requester_s)
}

fn ms(d: Option<Duration>) -> i64 {
    d.map(|d| d.as_millis().min(i64::MAX as u128) as i64)
        .unwrap_or(-1)
}

impl Admin {
    /// Creates a delegation token for the caller (or, with `owner`, for
    /// another principal, KIP-373), renewable by `renewers`, living at
    /// most `max_lifetime` (`None`: the broker's
    /// `delegation.token.max.lifetime.ms`).
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// # async fn run(admin: klamm::admin::Admin) -> klamm::Result<()> {
    /// let token = admin
    ///     .create_delegation_token(&["User:scheduler"], Some(Duration::from_secs(24 * 3600)), None)
    ///     .await?;
    /// println!("token {} expires at {} ms", token.token_id, token.expiry_ms);
    /// let later = admin.renew_delegation_token(&token.hmac, None).await?;
    /// println!("now at {later} ms");
    /// # Ok(())
    /// # }
    /// ```
    pub async fn create_delegation_token(
        &self,
        renewers: &[&str],
        max_lifetime: Option<Duration>,
        owner: Option<&str>,
    ) -> Result<DelegationToken> {
        let renewers = renewers
            .iter()
            .map(|r| {
                split_principal(r).map(|(t, n)| CreatableRenewers {
                    principal_type: t,
                    principal_name: n,
                    ..Default::default()
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let owner = owner.map(split_principal).transpose()?;
        self.single(ApiKey::CreateDelegationToken, Route::Any, |conn| {
            let req = CreateDelegationTokenRequest {
                owner_principal_type: owner.as_ref().map(|o| o.0.clone()),
                owner_principal_name: owner.as_ref().map(|o| o.1.clone()),
                renewers: renewers.clone(),
                max_lifetime_ms: ms(max_lifetime),
                ..Default::default()
            };
            async move {
                let version = conn
                    .api_versions()
                    .version_for(ApiKey::CreateDelegationToken, conn.broker())?;
                if req.owner_principal_name.is_some() && version < 3 {
                    return Err(super::topics::unsupported(
                        &conn,
                        ApiKey::CreateDelegationToken,
                        3,
                    ));
                }
                let resp = conn.send_version(&req, version).await?;
                check_top(&conn, ApiKey::CreateDelegationToken, resp.error_code, None)?;
                let (owner, requester) = principals(
                    (&resp.principal_type, &resp.principal_name),
                    (
                        &resp.token_requester_principal_type,
                        &resp.token_requester_principal_name,
                    ),
                );
                Ok(DelegationToken {
                    token_id: resp.token_id,
                    hmac: resp.hmac,
                    owner,
                    requester,
                    renewers: req
                        .renewers
                        .iter()
                        .map(|r| format!("{}:{}", r.principal_type, r.principal_name))
                        .collect(),
                    issued_ms: resp.issue_timestamp_ms,
                    expiry_ms: resp.expiry_timestamp_ms,
                    max_ms: resp.max_timestamp_ms,
                })
            }
        })
        .await
    }

    /// Renews a token by its HMAC for `period` (`None`: the broker's
    /// renew interval); its new expiry time (ms since the epoch).
    ///
    /// ```no_run
    /// # async fn run(admin: klamm::admin::Admin, token: klamm::admin::DelegationToken) -> klamm::Result<()> {
    /// let expiry = admin.renew_delegation_token(&token.hmac, Some(std::time::Duration::from_secs(3600))).await?;
    /// println!("{} now expires at {expiry} ms", token.token_id);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn renew_delegation_token(
        &self,
        hmac: &Bytes,
        period: Option<Duration>,
    ) -> Result<i64> {
        self.single(ApiKey::RenewDelegationToken, Route::Any, |conn| {
            let req = RenewDelegationTokenRequest {
                hmac: hmac.clone(),
                renew_period_ms: ms(period),
                ..Default::default()
            };
            async move {
                let resp = conn.send(&req).await?;
                check_top(&conn, ApiKey::RenewDelegationToken, resp.error_code, None)?;
                Ok(resp.expiry_timestamp_ms)
            }
        })
        .await
    }

    /// Expires a token by its HMAC after `period`; `Some(ZERO)` or `None`
    /// (Kafka's -1) expire it at once. Its new expiry time.
    ///
    /// ```no_run
    /// # async fn run(admin: klamm::admin::Admin, token: klamm::admin::DelegationToken) -> klamm::Result<()> {
    /// admin.expire_delegation_token(&token.hmac, Some(std::time::Duration::ZERO)).await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn expire_delegation_token(
        &self,
        hmac: &Bytes,
        period: Option<Duration>,
    ) -> Result<i64> {
        self.single(ApiKey::ExpireDelegationToken, Route::Any, |conn| {
            let req = ExpireDelegationTokenRequest {
                hmac: hmac.clone(),
                expiry_time_period_ms: ms(period),
                ..Default::default()
            };
            async move {
                let resp = conn.send(&req).await?;
                check_top(&conn, ApiKey::ExpireDelegationToken, resp.error_code, None)?;
                Ok(resp.expiry_timestamp_ms)
            }
        })
        .await
    }

    /// The tokens of the given owners (`None`: every token the caller may
    /// describe).
    ///
    /// ```no_run
    /// # async fn run(admin: klamm::admin::Admin) -> klamm::Result<()> {
    /// for t in admin.describe_delegation_tokens(Some(&["User:alice"])).await? {
    ///     println!("{} owned by {}, renewable by {:?}", t.token_id, t.owner, t.renewers);
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn describe_delegation_tokens(
        &self,
        owners: Option<&[&str]>,
    ) -> Result<Vec<DelegationToken>> {
        let owners = owners
            .map(|o| {
                o.iter()
                    .map(|p| {
                        split_principal(p).map(|(t, n)| DescribeDelegationTokenOwner {
                            principal_type: t,
                            principal_name: n,
                            ..Default::default()
                        })
                    })
                    .collect::<Result<Vec<_>>>()
            })
            .transpose()?;
        self.single(ApiKey::DescribeDelegationToken, Route::Any, |conn| {
            let req = DescribeDelegationTokenRequest {
                owners: owners.clone(),
                ..Default::default()
            };
            async move {
                let resp = conn.send(&req).await?;
                check_top(
                    &conn,
                    ApiKey::DescribeDelegationToken,
                    resp.error_code,
                    None,
                )?;
                Ok(resp
                    .tokens
                    .into_iter()
                    .map(|t| {
                        let (owner, requester) = principals(
                            (&t.principal_type, &t.principal_name),
                            (
                                &t.token_requester_principal_type,
                                &t.token_requester_principal_name,
                            ),
                        );
                        DelegationToken {
                            owner,
                            requester,
                            token_id: t.token_id,
                            hmac: t.hmac,
                            renewers: t
                                .renewers
                                .into_iter()
                                .map(|r| format!("{}:{}", r.principal_type, r.principal_name))
                                .collect(),
                            issued_ms: t.issue_timestamp,
                            expiry_ms: t.expiry_timestamp,
                            max_ms: t.max_timestamp,
                        }
                    })
                    .collect())
            }
        })
        .await
    }
}
