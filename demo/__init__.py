"""The demo worlds and the seed programme: a leaf that production code never imports."""
