"""The site: police stations, patrol units, hotspots, cameras, storage, evidence and alerts."""
