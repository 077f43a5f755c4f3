//! The commands that move about the server's tree: `cd` (and the `pwd`
//! it answers to). Every name is taken as typed, relative to the remote
//! working directory, and resolved ([`Executor::wire`]) only when it goes
//! to the server, so messages show the names the user wrote.

use super::super::cwd;
use super::Executor;

impl Executor {
    /// `cd [DIR]`: only a directory that lists (or that its parent lists as
    /// one) becomes the working directory; anything else leaves it as it was.
    pub(super) fn cd(&mut self, path: Option<&str>) -> Result<(), String> {
        let (target, typed, dash) = match path {
            None | Some("") => (String::new(), "/".to_owned(), false),
            Some("-") => match &self.previous_cwd {
                Some(p) => (p.clone(), cwd::absolute(p), true),
                None => return Err("cd: no previous directory".to_owned()),
            },
            Some(p) => (self.wire(p), p.to_owned(), false),
        };
        if !target.is_empty() {
            self.remote_is_dir(&cwd::absolute(&target))
                .map_err(|e| self.describe("cd", &typed, &typed, &e))?;
        }
        let old = std::mem::replace(&mut *self.cwd.borrow_mut(), target);
        self.previous_cwd = Some(old);
        if dash {
            // As a shell's `cd -`: say where it went.
            let line = format!(
                "Remote working directory: {}",
                super::escape_for_terminal(&cwd::absolute(&self.cwd.borrow()))
            );
            self.say(&line)?;
        }
        Ok(())
    }
}
