"""kanbench's built-in implementations.

Every module here holds one or more :class:`kanbench.Implementation` specs at
module level; ``kanbench`` discovers them by importing each module of this
package. The layers themselves are plain ``torch.nn.Module`` classes.
"""
