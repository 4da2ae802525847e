//! The requests in flight, counted per route, so that a drain cut short can say which.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use http::Method;

/// Longest path recorded; longer ones are cut (a report line, not a log of the input).
const MAX_PATH: usize = 120;

/// Requests in flight by route (`METHOD /path`). A request is in flight from the moment its
/// head is read until its response body has been sent or dropped.
#[derive(Debug, Default)]
pub(crate) struct InFlight {
    routes: Mutex<HashMap<String, usize>>,
}

impl InFlight {
    /// Records a request; it stays in flight until the guard is dropped.
    pub(crate) fn enter(self: &Arc<Self>, method: &Method, path: &str) -> Guard {
        let mut end = path.len().min(MAX_PATH);
        while !path.is_char_boundary(end) {
            end -= 1;
        }
        let route = format!("{method} {}", &path[..end]);
        *self
            .routes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(route.clone())
            .or_default() += 1;
        Guard {
            registry: self.clone(),
            route,
        }
    }

    /// How many requests are in flight.
    pub(crate) fn count(&self) -> usize {
        self.routes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .sum()
    }

    /// The routes in flight and how many requests each, busiest first.
    pub(crate) fn snapshot(&self) -> Vec<(String, usize)> {
        let mut routes: Vec<(String, usize)> = self
            .routes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(route, n)| (route.clone(), *n))
            .collect();
        routes.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        routes
    }
}

/// One request in flight; dropping it ends the request.
#[derive(Debug)]
pub(crate) struct Guard {
    registry: Arc<InFlight>,
    route: String,
}

impl Drop for Guard {
    fn drop(&mut self) {
        let mut routes = self
            .registry
            .routes
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = routes.get_mut(&self.route) {
            *n -= 1;
            if *n == 0 {
                routes.remove(&self.route);
            }
        }
    }
}

#[cfg(test)]
mod tests;
