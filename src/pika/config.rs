//! The config of one pika server: written from `workloads::codis::pika_conf`, the one template
//! (pika 4.0's `conf/pika.conf` defaults with what slotcheck needs: foreground, slot migration
//! on, loopback only, every path under the server's directory), shared with the router's tests.

use std::path::Path;

use workloads::codis::pika_conf::write_pika_config;

use super::error::PikaError;

/// Writes `<dir>/pika.conf` and creates the directories it names.
pub(crate) fn write_config(d: &Path, port: u16) -> Result<(), PikaError> {
    write_pika_config(d, port)
        .map(|_| ())
        .map_err(|e| PikaError::io(format!("configure the server in {}", d.display()), e))
}
