// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title Relay anchors
/// @notice Holds the Merkle roots of batches of messages accepted by one relay. Only roots go on
/// chain: no content, no addresses. A root is recorded once, with the block it was recorded in;
/// recording it again fails, so a resent or replayed anchoring transaction cannot anchor a batch
/// twice. docs/guides/anchoring.md says how a root is made and how a proof is checked.
contract RelayAnchor {
    /// @notice The relay's signer: the only account that may anchor.
    address public immutable owner;

    /// @notice The block number in which each root was anchored (0: never).
    mapping(bytes32 => uint256) public anchoredAt;

    /// @notice A root was anchored. `batchId` is the relay's id of the batch (its AnchorCommitted
    /// event id), `leafCount` the number of leaves in the tree.
    event Anchored(bytes32 indexed root, bytes16 indexed batchId, uint64 leafCount);

    error NotOwner();
    error AlreadyAnchored(bytes32 root);
    error EmptyTree();

    constructor() {
        owner = msg.sender;
    }

    function anchor(bytes32 root, bytes16 batchId, uint64 leafCount) external {
        if (msg.sender != owner) revert NotOwner();
        if (leafCount == 0) revert EmptyTree();
        if (anchoredAt[root] != 0) revert AlreadyAnchored(root);
        anchoredAt[root] = block.number;
        emit Anchored(root, batchId, leafCount);
    }
}
