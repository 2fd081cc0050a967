"""Files we read and write: template files and signatures, ICS calendars, JSON documents."""
