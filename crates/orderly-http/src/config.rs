//! Addresses from the environment (`HOST`, `PORT`, `ADMIN_PORT`).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use orderly::Env;

use crate::error::ErrorKind;

/// The public port variable (default 8080).
pub const PORT: &str = "PORT";
/// The admin port variable (default 9090).
pub const ADMIN_PORT: &str = "ADMIN_PORT";

/// The interface variable: the IP address both listeners bind (`0.0.0.0` in a container image,
/// say). Unset, they bind loopback, or every interface in a Kubernetes container.
pub const HOST: &str = "HOST";

/// Set by Kubernetes in every container; there the listeners bind every interface.
const IN_KUBERNETES: &str = "KUBERNETES_SERVICE_HOST";

/// The host to bind: `HOST` if set; else every interface in a Kubernetes container, loopback
/// otherwise.
fn host(env: &Env) -> Result<IpAddr, ErrorKind> {
    if let Some(value) = env.get(HOST) {
        return value
            .trim()
            .parse()
            .map_err(|_| ErrorKind::InvalidVariable {
                variable: HOST,
                value,
            });
    }
    Ok(if env.get(IN_KUBERNETES).is_some() {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    } else {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    })
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
    Ok(SocketAddr::new(host(env)?, port))
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

    #[test]
    fn host_chooses_the_interface_and_names_itself_when_invalid() {
        let env = Env::from_pairs([("HOST", "0.0.0.0"), ("PORT", "8081")]);
        assert_eq!(
            addr_from_env(&env, PORT, 8080),
            Ok("0.0.0.0:8081".parse().unwrap())
        );
        let env = Env::from_pairs([("HOST", "::1"), (IN_KUBERNETES, "10.0.0.1")]);
        assert_eq!(
            addr_from_env(&env, ADMIN_PORT, 9090),
            Ok("[::1]:9090".parse().unwrap())
        );
        let env = Env::from_pairs([("HOST", "my-laptop")]);
        let error = crate::error::Error::new(addr_from_env(&env, PORT, 8080).unwrap_err());
        assert_eq!(
            error.to_string(),
            "HOST: expected an IP address such as 0.0.0.0 or ::, found 'my-laptop'"
        );
    }
}
