//! The DNS resolver of the outbound client: it resolves a name, refuses the whole name if any of
//! its addresses may not be called ([`AllowList::check`]), and hands the client only the checked
//! addresses. The client connects to exactly what was checked, so a name that answers with a
//! public address to one lookup and a private one to the next (DNS rebinding) gains nothing.

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use super::policy::AllowList;

pub struct CheckedResolver {
    allow: Arc<AllowList>,
}

impl CheckedResolver {
    pub fn new(allow: Arc<AllowList>) -> Self {
        Self { allow }
    }
}

impl Resolve for CheckedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow = self.allow.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let lookup = host.clone();
            // The system resolver (getaddrinfo) blocks, as reqwest's own default does.
            let addresses: Vec<SocketAddr> =
                tokio::task::spawn_blocking(move || (lookup.as_str(), 0).to_socket_addrs().map(Iterator::collect))
                    .await??;
            if addresses.is_empty() {
                return Err(format!("{host} has no address").into());
            }
            for address in &addresses {
                allow.check(&host, address.ip())?;
            }
            Ok(Box::new(addresses.into_iter()) as Addrs)
        })
    }
}
