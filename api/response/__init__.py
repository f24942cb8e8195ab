"""HTTP routes for response: signed alert intake, stakeholder updates, the public status page, postmortems, drills."""
