// What the live pages say when Asterisk is not reachable: on one box "not connected", in a
// cluster the nodes whose AMI link is down (the server's `down`, e.g. "节点未连接 …: ast2").
// Loaded before each live page's own script (the Content-Security-Policy runs no inline one).
window.downText = (down) => down || "Asterisk 未连接 not connected";
