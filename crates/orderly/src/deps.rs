//! Typed dependencies: keys to components' resources, mapping, optional dependencies.
//!
//! A [`Key<R>`] is returned by [`SystemBuilder::add`](crate::SystemBuilder::add) and names a
//! component whose resource has type `R`. A component declares what it needs by passing keys
//! (or tuples of them) as its dependencies; its `start` receives exactly their values, so a
//! dependency on a component that does not exist, or of the wrong type, does not compile.

use std::any::Any;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use crate::system::SystemId;

/// A started component's resource, type-erased inside the framework only.
pub(crate) type Slot = Arc<dyn Any + Send + Sync>;

/// Names one component of one system and the type of the resource it delegates.
///
/// Keys are `Copy`. Use one directly as a dependency to receive a clone of the resource,
/// [`map`](Key::map) it to receive a part of it under your own name, or make it
/// [`optional`](Key::optional) to receive `None` when an ignorable component failed to start.
///
/// A dependency of the wrong type does not compile:
///
/// ```compile_fail
/// # use orderly::System;
/// let mut system = System::builder("app");
/// let port = system.add_fn("port", (), |(), _ctx| async { Ok::<u16, std::io::Error>(8080) });
/// // `port` delegates a u16; this component wants a String.
/// system.add_fn("http", port, |address: String, _ctx| async move {
///     Ok::<_, std::io::Error>(address)
/// });
/// ```
pub struct Key<R> {
    pub(crate) node: usize,
    pub(crate) system: SystemId,
    _resource: PhantomData<fn() -> R>,
}

impl<R> Key<R> {
    pub(crate) fn new(node: usize, system: SystemId) -> Self {
        Self {
            node,
            system,
            _resource: PhantomData,
        }
    }

    /// Depends on a part of the resource: `f` runs when the dependent starts and its result is
    /// what the dependent receives (corpjs `dependsOn({component, source, as})`, typed).
    ///
    /// ```
    /// # use orderly::System;
    /// #[derive(Clone)]
    /// struct Config { database_url: String }
    ///
    /// let mut system = System::builder("app");
    /// let config = system.add_fn("config", (), |(), _ctx| async {
    ///     Ok::<_, std::io::Error>(Config { database_url: "sqlite::memory:".into() })
    /// });
    /// let db = system.add_fn("db", config.map(|c| c.database_url.clone()), |url: String, _ctx| async move {
    ///     Ok::<_, std::io::Error>(url.len())
    /// });
    /// # let _ = db;
    /// ```
    pub fn map<T, F>(self, f: F) -> Mapped<R, F>
    where
        F: Fn(&R) -> T + Send + Sync + 'static,
    {
        Mapped { key: self, f }
    }

    /// Depends on the resource if it is there: the dependent receives `None` when this
    /// component is ignorable and failed to start, or was removed.
    pub fn optional(self) -> Optional<Self> {
        Optional(self)
    }
}

impl<R> Clone for Key<R> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<R> Copy for Key<R> {}

impl<R> PartialEq for Key<R> {
    fn eq(&self, other: &Self) -> bool {
        self.node == other.node && self.system == other.system
    }
}

impl<R> Eq for Key<R> {}

impl<R> fmt::Debug for Key<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Key")
            .field("node", &self.node)
            .field("resource", &std::any::type_name::<R>())
            .finish()
    }
}

/// A dependency on part of a resource; made by [`Key::map`].
pub struct Mapped<R, F> {
    key: Key<R>,
    f: F,
}

impl<R, F> Mapped<R, F> {
    /// Makes this dependency optional; see [`Key::optional`].
    pub fn optional(self) -> Optional<Self> {
        Optional(self)
    }
}

impl<R, F> fmt::Debug for Mapped<R, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mapped").field("key", &self.key).finish()
    }
}

/// A dependency that may be absent; made by [`Key::optional`] or [`Mapped::optional`].
#[derive(Debug)]
pub struct Optional<D>(D);

/// What the dependencies of a component are: a [`Key`], a [`Mapped`] key, an [`Optional`]
/// one, `()` for none, or a tuple of up to twelve of these.
///
/// Its `Output` is what the component's `start` receives: the resources' values, in the same
/// shape. The trait is sealed: its methods take types only orderly can name.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be used as dependencies",
    label = "expected a Key, key.map(..), key.optional(), `()` or a tuple of these",
    note = "dependencies are the keys that `SystemBuilder::add` returned"
)]
pub trait Dependencies: Send + Sync + 'static {
    /// What the dependent receives.
    type Output: Send + 'static;

    #[doc(hidden)]
    fn edges(&self, out: &mut Vec<Edge>);

    #[doc(hidden)]
    fn resolve(&self, table: &Table<'_>) -> Result<Self::Output, Missing>;
}

pub(crate) use sealed::{Edge, Missing, Table};

// `pub` in a private module: nameable by no one outside the crate, which seals the trait.
#[allow(unreachable_pub, missing_debug_implementations)]
mod sealed {
    use super::{Slot, SystemId};

    /// The resources of the started components, indexed by node.
    pub struct Table<'a>(pub(crate) &'a [Option<Slot>]);

    /// The node whose resource was required but is absent.
    pub struct Missing(pub(crate) usize);

    /// One edge of the graph, as the builder sees it.
    #[derive(Clone, Copy, Debug)]
    pub struct Edge {
        pub(crate) node: usize,
        pub(crate) system: SystemId,
        pub(crate) optional: bool,
    }
}

fn fetch<R: Clone + 'static>(node: usize, table: &Table<'_>) -> Result<R, Missing> {
    table
        .0
        .get(node)
        .and_then(Option::as_ref)
        .and_then(|slot| slot.downcast_ref::<R>())
        .cloned()
        .ok_or(Missing(node))
}

impl<R: Clone + Send + Sync + 'static> Dependencies for Key<R> {
    type Output = R;
    fn edges(&self, out: &mut Vec<Edge>) {
        out.push(Edge {
            node: self.node,
            system: self.system,
            optional: false,
        });
    }
    fn resolve(&self, table: &Table<'_>) -> Result<R, Missing> {
        fetch(self.node, table)
    }
}

impl<R, T, F> Dependencies for Mapped<R, F>
where
    R: Send + Sync + 'static,
    T: Send + 'static,
    F: Fn(&R) -> T + Send + Sync + 'static,
{
    type Output = T;
    fn edges(&self, out: &mut Vec<Edge>) {
        out.push(Edge {
            node: self.key.node,
            system: self.key.system,
            optional: false,
        });
    }
    fn resolve(&self, table: &Table<'_>) -> Result<T, Missing> {
        let node = self.key.node;
        let slot = table
            .0
            .get(node)
            .and_then(Option::as_ref)
            .ok_or(Missing(node))?;
        let resource = slot.downcast_ref::<R>().ok_or(Missing(node))?;
        Ok((self.f)(resource))
    }
}

impl<D: Dependencies> Dependencies for Optional<D> {
    type Output = Option<D::Output>;
    fn edges(&self, out: &mut Vec<Edge>) {
        let from = out.len();
        self.0.edges(out);
        for edge in &mut out[from..] {
            edge.optional = true;
        }
    }
    fn resolve(&self, table: &Table<'_>) -> Result<Self::Output, Missing> {
        Ok(self.0.resolve(table).ok())
    }
}

macro_rules! tuples {
    ($($name:ident)*) => {
        impl<$($name: Dependencies),*> Dependencies for ($($name,)*) {
            type Output = ($($name::Output,)*);
            #[allow(unused_variables, non_snake_case)]
            fn edges(&self, out: &mut Vec<Edge>) {
                let ($($name,)*) = self;
                $($name.edges(out);)*
            }
            #[allow(unused_variables, non_snake_case)]
            fn resolve(&self, table: &Table<'_>) -> Result<Self::Output, Missing> {
                let ($($name,)*) = self;
                Ok(($($name.resolve(table)?,)*))
            }
        }
    };
}

tuples!();
tuples!(A);
tuples!(A B);
tuples!(A B C);
tuples!(A B C D);
tuples!(A B C D E);
tuples!(A B C D E F);
tuples!(A B C D E F G);
tuples!(A B C D E F G H);
tuples!(A B C D E F G H I);
tuples!(A B C D E F G H I J);
tuples!(A B C D E F G H I J K);
tuples!(A B C D E F G H I J K L);

/// The resources of a running system, looked up by key.
///
/// Returned by [`Running::resources`](crate::Running::resources), and the resource a nested
/// system delegates to its parent.
#[derive(Clone)]
pub struct Resources {
    pub(crate) system: SystemId,
    pub(crate) table: Arc<[Option<Slot>]>,
}

impl Resources {
    /// The resource of the component `key` names, or `None` when that component is not
    /// running (an ignorable component that failed, a removed one) or belongs to another system.
    pub fn get<R: Clone + Send + Sync + 'static>(&self, key: Key<R>) -> Option<R> {
        if key.system != self.system {
            return None;
        }
        fetch(key.node, &Table(&self.table)).ok()
    }
}

impl fmt::Debug for Resources {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let present = self.table.iter().filter(|s| s.is_some()).count();
        f.debug_struct("Resources")
            .field("present", &present)
            .finish()
    }
}

impl Key<Resources> {
    /// Depends on one resource of a nested system: the dependent receives that resource, or its
    /// start fails naming the nested system when the resource is absent.
    pub fn get<R: Clone + Send + Sync + 'static>(self, key: Key<R>) -> Within<R> {
        Within {
            outer: self,
            inner: key,
        }
    }
}

/// A dependency on one resource of a nested system; made by [`Key::get`].
#[derive(Debug)]
pub struct Within<R> {
    outer: Key<Resources>,
    inner: Key<R>,
}

impl<R: Clone + Send + Sync + 'static> Dependencies for Within<R> {
    type Output = R;
    fn edges(&self, out: &mut Vec<Edge>) {
        self.outer.edges(out);
    }
    fn resolve(&self, table: &Table<'_>) -> Result<R, Missing> {
        let resources: Resources = fetch(self.outer.node, table)?;
        resources.get(self.inner).ok_or(Missing(self.outer.node))
    }
}
