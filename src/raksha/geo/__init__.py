"""Geography: great-circle distances, jurisdiction polygons, station and patrol-unit routing."""
