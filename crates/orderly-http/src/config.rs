//! Addresses from the environment (`PORT`, `ADMIN_PORT`).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use orderly::Env;

use crate::error::ErrorKind;

/// The public port variable (default 8080).
pub const PORT: &str = "PORT";
/// The admin port variable (default 9090).
pub const ADMIN_PORT: &str = "ADMIN_PORT";

/// Set by Kubernetes in every container; there the listeners bind every interface.
const IN_KUBERNETES: &str = "KUBERNETES_SERVICE_HOST";

/// The host to bind: every interface in a Kubernetes container, loopback otherwise.
fn host(env: &Env) -> IpAddr {
    if env.get(IN_KUBERNETES).is_some() {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    } else {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    }
}

/// The address to bind from `variable` (a port number), or `default_port` when it is unset.
pub(crate) fn addr_from_env(
    env: &Env,
    variable: &'static str,
    default_port: u16,
) -> Result<SocketAddr, ErrorKind> {
    let port = match env.get(variable) {
        None => default_port,
        Some(value) => value
            .trim()
            .parse::<u16>()
            .map_err(|_| ErrorKind::InvalidVariable { variable, value })?,
    };
    Ok(SocketAddr::new(host(env), port))
}

/// The address used when neither `bind` nor `from_env` was called.
pub(crate) fn local(port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_port_and_names_the_variable_when_it_is_invalid() {
        let env = Env::from_pairs([("PORT", "8081")]);
        assert_eq!(addr_from_env(&env, PORT, 8080), Ok(local(8081)));
        assert_eq!(addr_from_env(&Env::empty(), PORT, 8080), Ok(local(8080)));
        let env = Env::from_pairs([("PORT", "80x"), (IN_KUBERNETES, "10.0.0.1")]);
        assert_eq!(
            addr_from_env(&env, PORT, 8080),
            Err(ErrorKind::InvalidVariable {
                variable: "PORT",
                value: "80x".into()
            })
        );
        let env = Env::from_pairs([(IN_KUBERNETES, "10.0.0.1")]);
        assert_eq!(
            addr_from_env(&env, ADMIN_PORT, 9090),
            Ok("0.0.0.0:9090".parse().unwrap())
        );
    }
}
