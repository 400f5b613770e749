"""Data layer: supported MiniGrid environments, the shortest-path expert and demonstrations."""
