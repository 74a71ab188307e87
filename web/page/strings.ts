/** The page's own words in English; Uppy's come from @uppy/locales. */
export const EN = {
  pageTitle: 'Upload files',
  intro:
    'Resumable uploads over tus. Each file is hashed (SHA-256) in this browser first; content the server already holds is not sent again.',
  language: 'Language',
  dashboardNote:
    'Interrupted? Reload the page and add the same file again: it goes on where it stopped.',
  finishedUploads: 'Finished uploads',
  finishedNote: 'Kept in this browser only.',
  noFinishedUploads: 'No upload has finished in this browser yet.',
  clearList: 'Clear list',
  download: 'Download',
  deduplicated: 'Already on the server: nothing sent',
  // Shown by the pre-processors in Uppy's status bar.
  hashingFile: 'Computing SHA-256',
  checkingServer: 'Asking the server for this content',
};

export type PageStrings = Record<keyof typeof EN, string>;

export const ZH_CN: PageStrings = {
  pageTitle: '上传文件',
  intro: '通过 tus 可续传上传。每个文件先在浏览器中计算 SHA-256；服务器已有的内容不会再次发送。',
  language: '语言',
  dashboardNote: '上传中断了？重新加载页面，再次添加同一文件，即可从中断处继续。',
  finishedUploads: '已完成的上传',
  finishedNote: '仅保存在此浏览器中。',
  noFinishedUploads: '此浏览器中还没有完成的上传。',
  clearList: '清空列表',
  download: '下载',
  deduplicated: '服务器上已有此内容：未发送任何数据',
  hashingFile: '正在计算 SHA-256',
  checkingServer: '正在向服务器查询此内容',
};
